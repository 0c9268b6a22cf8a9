"""Planning a run: which pairs to do, skip or fail up front, which style targets to compute,
and how to group pairs into batches. Pure functions: no Prefect, no GPU."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from nst_engine import EngineConfig
from nst_engine.errors import ImageError
from nst_engine.images import fit_size, image_size
from nst_engine.optimize import MIN_SIDE, style_side
from nst_engine.vgg import weights_identity
from tasks import layout
from tasks.layout import PairOutcome
from tasks.manifest import ImageRef, Manifest
from tasks.stores import Storage, StorageError, read_json, read_uri
from tasks.style_cache import style_key
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


@dataclass(frozen=True)
class PairJob:
    """One pair to stylize, with everything a worker needs and nothing it must look up again:
    the inputs' URIs and hashes, the effective engine settings, the result's fingerprint and the
    cache keys of its style targets. Small and picklable: it travels to task runs."""

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
        return layout.pair_name(self.content_id, self.style_id)

    @property
    def image_key(self) -> str:
        return layout.image_key(self.content_id, self.style_id)

    @property
    def provenance_key(self) -> str:
        return layout.provenance_key(self.content_id, self.style_id)

    @property
    def thumbnail_key(self) -> str:
        return layout.thumbnail_key(self.content_id, self.style_id)

    def failed(self, reason: str) -> PairOutcome:
        return PairOutcome.failed(self.content_id, self.style_id, reason)


@dataclass
class Plan:
    """What one run will do, decided before any GPU work: pairs to do (grouped in `batches`),
    pairs to skip (same fingerprint already in the output), pairs that fail up front (an input
    that cannot be read, with the reason), and the style targets the batches need."""

    todo: list[PairJob]
    skipped: list[PairJob]
    failed: list[PairOutcome]
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
        return InputInfo(uri, digest, image_size(data, name=uri))
    except ImageError as exc:
        return InputInfo(uri, digest, error=str(exc))


def check_working_sizes(config: EngineConfig, content: tuple[str, tuple[int, int]],
                        styles: Sequence[tuple[str, tuple[int, int]]]) -> None:
    """Raise ImageError naming the first input (uri, size) too thin to work with at `config`'s
    sizes (nst_engine.images.fit_size), before any pixel is decoded or memory is spent on it."""
    fit_size(content[1], config.size, MIN_SIDE, name=content[0])
    for uri, size in styles:
        for scale in config.scales:
            fit_size(size, style_side(config, scale), MIN_SIDE, name=uri)


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
    failed: list[PairOutcome] = []
    style_jobs: dict[str, StyleJob] = {}
    finished = set() if force else set(output.list(layout.RESULTS_PREFIX))  # one listing, not a read per pair
    weight_ids: dict[str, str] = {}  # s3:// weights cost a HEAD request: once per run
    for spec in pairs:
        content, style = contents[spec.content], styles[spec.style]
        errors = [infos[u].error for u in (content.uris[0], *style.uris) if infos[u].error]
        if not errors:
            try:
                check_working_sizes(spec.engine, (content.uris[0], infos[content.uris[0]].size),
                                    [(u, infos[u].size) for u in style.uris])
            except ImageError as exc:
                errors = [str(exc)]
        if errors:
            failed.append(PairOutcome.failed(spec.content, spec.style, "; ".join(errors)))
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
            key = style_key(config, style_shas, blend, side, weights_id)
            jobs.append(StyleJob(key, style.id, style.uris, blend, side, config.style_layers, config.pooling,
                                 config.weights))
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
