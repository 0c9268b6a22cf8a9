"""Planning a run: which pairs to do, skip or fail up front, which style targets to compute,
and how to group pairs into batches. Pure functions: no Prefect, no GPU."""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from PIL import Image, UnidentifiedImageError

from nst_engine import EngineConfig
from nst_engine.images import DEFAULT_MAX_PIXELS, fit_size
from nst_engine.optimize import MIN_SIDE, style_side
from nst_engine.vgg import weights_identity
from tasks.manifest import ImageRef, Manifest
from tasks.storage import Storage, StorageError, read_json, read_uri
from tasks.style_cache import style_cache_key
from tasks.weights import local_weights

# Prefect's server ingests ~13-16 task runs/s (DESIGN.md): keep one flow run under this many.
MAX_TASK_RUNS = 200


@dataclass(frozen=True)
class InputInfo:
    """One input image as read at planning time: its hash and decoded shape, or why it failed."""

    uri: str
    sha256: str = ""
    size: tuple[int, int] = (0, 0)  # upright width, height
    error: str = ""


@dataclass(frozen=True)
class StyleJob:
    """One style target to compute: a style (or blend) at one size for one extractor."""

    key: str
    style_id: str
    uris: tuple[str, ...]
    blend: tuple[float, ...]
    side: int
    layers: tuple[str, ...]
    pooling: str
    weights: str
    statistic: str = "gram"  # the style statistic (nst_engine.statistics)


@dataclass(frozen=True)
class PairJob:
    content_id: str
    style_id: str
    content_uri: str
    style_uris: tuple[str, ...]
    style_blend: tuple[float, ...]
    config: EngineConfig
    fingerprint: str
    style_keys: tuple[str, ...]  # one per scale; empty when colours are matched per content
    inputs: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.content_id}--{self.style_id}"

    @property
    def image_key(self) -> str:
        return f"results/{self.name}.png"

    @property
    def provenance_key(self) -> str:
        return f"results/{self.name}.json"

    @property
    def thumbnail_key(self) -> str:
        return f"thumbs/{self.name}.jpg"


@dataclass
class Plan:
    todo: list[PairJob]
    skipped: list[PairJob]
    failed: list[tuple[str, str, str]]  # (content id, style id, reason)
    style_jobs: list[StyleJob]
    batches: list[list[PairJob]]
    cached_styles: set[str]

    def summary(self) -> dict[str, int]:
        return {"pairs": len(self.todo) + len(self.skipped) + len(self.failed), "todo": len(self.todo),
                "skipped": len(self.skipped), "failed_inputs": len(self.failed),
                "style_targets": len(self.style_jobs), "style_targets_cached": len(self.cached_styles),
                "batches": len(self.batches)}


def inspect_input(uri: str) -> InputInfo:
    """Read one input's bytes once: its sha256 and upright size, without decoding pixels."""
    try:
        data = read_uri(uri)
    except StorageError as exc:
        return InputInfo(uri, error=str(exc))
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF rotations by 90 degrees
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return InputInfo(uri, digest, error=f"{uri}: not a readable image ({exc})")
    if width * height > DEFAULT_MAX_PIXELS:
        return InputInfo(uri, digest, error=f"{uri}: {width}x{height} is over the limit of {DEFAULT_MAX_PIXELS} pixels")
    return InputInfo(uri, digest, (width, height))


def pair_fingerprint(config: EngineConfig, content_sha: str, style_shas: Sequence[str],
                     blend: Sequence[float], weights_id: str) -> str:
    """Identity of one result: settings, input bytes and weights. Equal -> the result is done."""
    data = {"config": config.fingerprint(), "content": content_sha, "styles": list(style_shas),
            "blend": list(blend), "weights": weights_id}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def build_plan(manifest: Manifest, output: Storage, *, force: bool = False, only: Iterable[str] | None = None,
               batch_size: int = 4, cached: Callable[[str], bool] | None = None,
               select: Callable[[str, str], bool] | None = None) -> Plan:
    """Decide what a run does. Reads every input once; touches no GPU.

    `select(content id, style id)` keeps only some pairs (a shard's, tasks/shards.py); the
    inputs of the other pairs are not even read.
    """
    wanted = set(only) if only else None
    contents = {ref.id: ref for ref in manifest.contents}
    styles = {ref.id: ref for ref in manifest.styles}
    pairs = [p for p in manifest.pairs if (wanted is None or p.content in wanted or p.style in wanted)
             and (select is None or select(p.content, p.style))]
    used = {contents[p.content].uris[0] for p in pairs} | {u for p in pairs for u in styles[p.style].uris}
    infos = {uri: inspect_input(uri) for uri in sorted(used)}

    todo: list[PairJob] = []
    skipped: list[PairJob] = []
    failed: list[tuple[str, str, str]] = []
    style_jobs: dict[str, StyleJob] = {}
    finished = set() if force else set(output.list("results"))  # one listing, not a read per pair
    weight_ids: dict[str, str] = {}  # s3:// weights cost a HEAD request: once per run
    for spec in pairs:
        content, style = contents[spec.content], styles[spec.style]
        errors = [infos[u].error for u in (content.uris[0], *style.uris) if infos[u].error]
        if errors:
            failed.append((spec.content, spec.style, "; ".join(errors)))
            continue
        job, jobs = _pair_job(spec.engine, content, style, infos, weight_ids)
        if _is_done(job, output, finished):
            skipped.append(job)
            continue
        todo.append(job)
        for style_job in jobs:
            style_jobs.setdefault(style_job.key, style_job)
    cached_styles = {key for key in style_jobs if cached is not None and cached(key)}
    return Plan(todo, skipped, failed, list(style_jobs.values()), make_batches(todo, infos, batch_size), cached_styles)


def _is_done(job: PairJob, output: Storage, finished: set[str]) -> bool:
    """Done = the image is there and its provenance (written last) holds the same fingerprint."""
    if job.provenance_key not in finished or job.image_key not in finished:
        return False
    record = read_json(output, job.provenance_key)
    return isinstance(record, dict) and record.get("fingerprint") == job.fingerprint


def _pair_job(config: EngineConfig, content: ImageRef, style: ImageRef, infos: dict[str, InputInfo],
              weight_ids: dict[str, str]) -> tuple[PairJob, list[StyleJob]]:
    if config.weights not in weight_ids:  # an s3:// file is fetched once, then known by its bytes
        weight_ids[config.weights] = weights_identity(local_weights(config.weights))
    weights_id = weight_ids[config.weights]
    content_info = infos[content.uris[0]]
    style_shas = [infos[u].sha256 for u in style.uris]
    blend = tuple(config.style_blend or style.blend)
    fingerprint = pair_fingerprint(config, content_info.sha256, style_shas, blend, weights_id)
    jobs: list[StyleJob] = []
    if not config.match_histogram:  # matched targets depend on the content: made in its batch
        for scale in config.scales:
            side = style_side(config, scale)
            key = style_cache_key(style_shas, blend, side, config.style_layers, config.pooling, weights_id,
                                  statistic=config.style_statistic)
            jobs.append(StyleJob(key, style.id, style.uris, blend, side, config.style_layers, config.pooling,
                                 config.weights, config.style_statistic))
    inputs = {"content": {"id": content.id, "uri": content.uris[0], "sha256": content_info.sha256},
              "style": {"id": style.id, "uris": list(style.uris), "sha256": style_shas, "blend": list(blend)}}
    job = PairJob(content.id, style.id, content.uris[0], style.uris, blend, config, fingerprint,
                  tuple(j.key for j in jobs), inputs)
    return job, jobs


def make_batches(jobs: Sequence[PairJob], infos: dict[str, InputInfo], batch_size: int) -> list[list[PairJob]]:
    """Group pairs that can share one engine call (same settings, same output shape).

    The batch size grows when needed so a run stays under MAX_TASK_RUNS task runs.
    """
    size = max(1, batch_size, math.ceil(len(jobs) / MAX_TASK_RUNS))
    groups: dict[tuple[str, tuple[int, int]], list[PairJob]] = {}
    for job in jobs:
        shape = fit_size(infos[job.content_uri].size, job.config.size, MIN_SIDE)
        groups.setdefault((job.config.fingerprint() + job.config.device, shape), []).append(job)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]
