"""Planning a run: which pairs to do, skip or fail up front, which style targets to compute,
and how to group pairs into batches. Pure functions: no Prefect, no GPU."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from nst_engine import EngineConfig
from nst_engine.errors import ImageError
from nst_engine.images import fit_size, image_size, load_image
from nst_engine.optimize import MIN_SIDE, style_side
from tasks import layout
from tasks.layout import DONE, SKIPPED, PairOutcome
from tasks.manifest import ImageRef, Manifest
from tasks.options import RunOptions, RunOptionsError
from tasks.plan_index import KnownInput, PlanIndex
from tasks.stores import ObjectInfo, Storage, StorageError, read_uri, stat_uri
from tasks.style_cache import cache_location, style_key
from tasks.weights import planned_identity

# Prefect's server ingests ~13-16 task runs/s (docs/design.md): keep one flow run under this many.
MAX_TASK_RUNS = 200


@dataclass(frozen=True)
class InputInfo:
    """One input image as read at planning time: its hash and decoded shape, or why it failed."""

    uri: str
    sha256: str = ""
    size: tuple[int, int] = (0, 0)  # upright width, height
    error: str = ""
    identity: ObjectInfo | None = None  # size and version (ETag; inode, mtime, ctime) when known
    read: bool = True  # False: sha256 and size came from the plan index, no byte was read


@dataclass(frozen=True)
class StyleJob:
    """One style target to compute: a style (or blend) at one size for one extractor."""

    key: str
    style: str
    uris: tuple[str, ...]
    blend: tuple[float, ...]
    side: int
    layers: tuple[str, ...]
    pooling: str
    weights: str
    statistic: str = "gram"  # the style statistic (nst_engine.statistics)
    # What planning hashed (the key is made of them): the task checks what it reads against them.
    sha256s: tuple[str, ...] = ()  # one per uri
    weights_id: str = ""


@dataclass(frozen=True)
class PairJob:
    """One pair to stylize, with everything a worker needs and nothing it must look up again:
    the inputs' URIs and hashes, the effective engine settings, the result's fingerprint and the
    cache keys of its style targets. Small and picklable: it travels to task runs."""

    content: str
    style: str
    content_uri: str
    style_uris: tuple[str, ...]
    style_blend: tuple[float, ...]
    config: EngineConfig
    fingerprint: str
    style_keys: tuple[str, ...]  # one per scale; empty when colours are matched per content
    inputs: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    weights_id: str = ""  # the weights' identity as planned (checked again before the engine runs)

    @property
    def name(self) -> str:
        return layout.pair_name(self.content, self.style)

    @property
    def label(self) -> str:
        return layout.pair_label(self.content, self.style)

    @property
    def image_key(self) -> str:
        return layout.image_key(self.content, self.style)

    @property
    def provenance_key(self) -> str:
        return layout.provenance_key(self.content, self.style)

    @property
    def thumbnail_key(self) -> str:
        return layout.thumbnail_key(self.content, self.style)

    def failed(self, reason: str) -> PairOutcome:
        return PairOutcome.failed(self.content, self.style, reason)


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
    index: PlanIndex = field(default_factory=PlanIndex.empty, repr=False)
    inputs_read: int = 0  # inputs whose bytes planning read (new or changed since the index saw them)

    def decided(self) -> list[PairOutcome]:
        """Pairs decided before any work: those failing at planning, then those already done."""
        return [*self.failed, *(PairOutcome(j.content, j.style, SKIPPED, "same fingerprint already done",
                                            fingerprint=j.fingerprint) for j in self.skipped)]

    def summary(self) -> dict[str, int]:
        return {"pairs": len(self.todo) + len(self.skipped) + len(self.failed), "todo": len(self.todo),
                "skipped": len(self.skipped), "failed_inputs": len(self.failed),
                "style_targets": len(self.style_jobs), "style_targets_cached": len(self.cached_styles),
                "batches": len(self.batches), "inputs_read": self.inputs_read}


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


def inspect_inputs(uris: Iterable[str], listed: Mapping[str, ObjectInfo], index: PlanIndex) -> dict[str, InputInfo]:
    """Each input's InputInfo, reading only the bytes of inputs the index does not know under
    their current identity (from the manifest's glob listing, else os.stat or a HEAD request).

    The identity is taken before the bytes are read: if the object changes in between, the
    index holds the new hash under the old identity, which the next run no longer sees: it reads
    again. Failed inputs are not remembered (read again next run, with the reason).
    """
    infos: dict[str, InputInfo] = {}
    for uri in uris:
        try:
            identity = listed.get(uri) or stat_uri(uri)
        except StorageError:
            infos[uri] = inspect_input(uri)  # the read names what is wrong (missing, forbidden, ...)
            continue
        known = index.input(uri, identity)
        if known is not None:
            infos[uri] = InputInfo(uri, known.sha256, known.size, identity=identity, read=False)
            continue
        info = dataclasses.replace(inspect_input(uri), identity=identity)
        if not info.error:
            index.record_input(uri, identity, KnownInput(info.sha256, info.size))
        infos[uri] = info
    return infos


def pair_fingerprint(config: EngineConfig, content_sha: str, style_shas: Sequence[str],
                     blend: Sequence[float], weights_id: str) -> str:
    """Identity of one result: settings, input bytes and weights. Equal -> the result is done."""
    data = {"config": config.fingerprint(), "content": content_sha, "styles": list(style_shas),
            "blend": list(blend), "weights": weights_id}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def build_plan(manifest: Manifest, output: Storage, options: RunOptions = RunOptions(), *,
               cached: Callable[[str], bool] | None = None, select: Callable[[str, str], bool] | None = None,
               index: PlanIndex | None = None, save_index: bool = True) -> Plan:
    """Decide what a run does; touches no GPU. From `options`: `force` (redo pairs already done),
    `only` (content/style ids to keep; an id the manifest lacks is refused, RunOptionsError) and
    `batch_size` (pairs per engine call).

    Requests scale with what changed: one listing of results/, one read of the plan index
    (default: the one for this output in the manifest's style cache, tasks/plan_index.py), and
    the bytes of inputs that are new or changed since the index saw them; a provenance file is
    read only when the index does not know it. What was learned is saved back to the index.
    `select(content id, style id)` keeps only some pairs (a shard's, tasks/shards.py); the
    inputs of the other pairs are not even looked at. `save_index=False` (a dry run): nothing is
    written anywhere, not even a local copy of s3:// weights (tasks.weights.planned_identity).
    """
    force = options.force
    wanted = set(options.only) if options.only else None
    if wanted:
        _check_only(manifest, wanted)
    contents = {ref.id: ref for ref in manifest.contents}
    styles = {ref.id: ref for ref in manifest.styles}
    pairs = [p for p in manifest.pairs if (wanted is None or p.content in wanted or p.style in wanted)
             and (select is None or select(p.content, p.style))]
    used = {contents[p.content].uris[0] for p in pairs} | {u for p in pairs for u in styles[p.style].uris}
    if index is None:
        index = PlanIndex.open(cache_location(manifest.cache), output.uri)
    infos = inspect_inputs(sorted(used), manifest.listed, index)

    todo: list[PairJob] = []
    skipped: list[PairJob] = []
    failed: list[PairOutcome] = []
    style_jobs: dict[str, StyleJob] = {}
    # One paginated listing of results/ (not a request per pair). The trailing '/' keeps
    # results-old/ and the like out of it.
    finished = {} if force else {o.key: o for o in output.list_objects(layout.RESULTS_PREFIX + "/")}
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
        job, jobs = _pair_job(spec.engine, content, style, infos, weight_ids, fetch=save_index)
        if _is_done(job, output, finished, index):
            skipped.append(job)
            continue
        todo.append(job)
        for style_job in jobs:
            style_jobs.setdefault(style_job.key, style_job)
    cached_styles = {key for key in style_jobs if cached is not None and cached(key)}
    index.forget_except(inputs={u for ref in (*manifest.contents, *manifest.styles) for u in ref.uris},
                        results=None if force else {layout.pair_name(*_pair_of(k)) for k in finished})
    if save_index:
        index.save()
    return Plan(todo, skipped, failed, list(style_jobs.values()), make_batches(todo, infos, options.batch_size), cached_styles,
                index, sum(1 for info in infos.values() if info.read))


def _check_only(manifest: Manifest, wanted: set[str]) -> None:
    """Every id `--only` names is a content or style of the manifest: a typo must not end in a
    run that did nothing and exited 0."""
    known = {ref.id for ref in (*manifest.contents, *manifest.styles)}
    unknown = sorted(wanted - known)
    if unknown:
        def some(ids: list[str]) -> str:
            return ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        raise RunOptionsError(f"only: unknown id(s) {some([repr(i) for i in unknown])} in {manifest.source}; its "
                              f"contents are {some([r.id for r in manifest.contents])}, its styles "
                              f"{some([r.id for r in manifest.styles])}")


def _pair_of(key: str) -> tuple[str, str]:
    """'results/a--b.json' -> ('a', 'b')."""
    name = key[len(layout.RESULTS_PREFIX) + 1:].rpartition(".")[0]
    content, _, style = name.partition(layout.PAIR_SEPARATOR)
    return content, style


def _is_done(job: PairJob, output: Storage, finished: Mapping[str, ObjectInfo], index: PlanIndex) -> bool:
    """Done = the provenance (written last) holds the same fingerprint and the image is intact:
    its size and sha256 are those the provenance records (an older provenance without them: the
    image decodes). A 0-byte or truncated image is never done.

    Nothing is read while the index vouches for both objects under their listed identities."""
    provenance, image = finished.get(job.provenance_key), finished.get(job.image_key)
    if provenance is None or image is None or image.size == 0:
        return False
    fingerprint = index.fingerprint(job.name, provenance, image)
    if fingerprint is None:
        fingerprint = _verify_result(output, job.name, job.provenance_key, job.image_key, image, index)
    return fingerprint == job.fingerprint


def _verify_result(output: Storage, pair: str, provenance_key: str, image_key: str, image: ObjectInfo,
                   index: PlanIndex, *, read_image: bool = True) -> str | None:
    """The fingerprint a result's provenance holds when its image checks out, else None; recorded
    in the index under both identities. `read_image=False` (results this run just wrote): the
    size is compared, the bytes are not read again."""
    try:
        data, info = output.read_versioned(provenance_key)
        record = json.loads(data)
    except (StorageError, ValueError):
        return None
    fingerprint = record.get("fingerprint") if isinstance(record, dict) else None
    if not isinstance(fingerprint, str):
        return None
    index.record_result(pair, info, fingerprint)  # the fingerprint alone (a stale one is no harm)
    written = record.get("image")
    if isinstance(written, dict) and written.get("bytes") != image.size:
        return None
    if read_image and not _image_intact(output, image_key, written):
        return None
    index.record_result(pair, info, fingerprint, image)
    return fingerprint


def _image_intact(output: Storage, key: str, written: object) -> bool:
    """The image's bytes hash to what its provenance recorded, or (no record) decode."""
    try:
        data = output.read(key)
    except StorageError:
        return False
    if isinstance(written, dict) and isinstance(written.get("sha256"), str):
        return hashlib.sha256(data).hexdigest() == written["sha256"]
    try:
        load_image(data, name=key)
    except ImageError:
        return False
    return True


def finished_since_planning(plan: Plan, output: Storage) -> list[PairJob]:
    """The pairs to do whose result is now in the output, intact and current: what a run that
    ended early (its reports not written) had finished. One listing of results/."""
    finished = {o.key: o for o in output.list_objects(layout.RESULTS_PREFIX + "/")}
    return [job for job in plan.todo if _is_done(job, output, finished, plan.index)]


def record_results(plan: Plan, output: Storage, outcomes: Iterable[PairOutcome]) -> None:
    """After a run: remember the fingerprints of the results it wrote (one small read and one stat
    each), so the next run's planning need not read them; then save the index."""
    for outcome in outcomes:
        if outcome.status == DONE:
            try:
                image = output.stat(layout.image_key(outcome.content, outcome.style))
            except StorageError:
                continue
            _verify_result(output, outcome.name, layout.provenance_key(outcome.content, outcome.style),
                           layout.image_key(outcome.content, outcome.style), image, plan.index, read_image=False)
    plan.index.save()


def _pair_job(config: EngineConfig, content: ImageRef, style: ImageRef, infos: dict[str, InputInfo],
              weight_ids: dict[str, str], fetch: bool) -> tuple[PairJob, list[StyleJob]]:
    if config.weights not in weight_ids:  # an s3:// file is fetched once, then known by its bytes
        weight_ids[config.weights] = planned_identity(config.weights, fetch=fetch)
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
                                 config.weights, config.style_statistic, tuple(style_shas), weights_id))
    inputs = {"content": {"id": content.id, "uri": content.uris[0], "sha256": content_info.sha256,
                          **_identity(content_info)},
              "style": {"id": style.id, "uris": list(style.uris), "sha256": style_shas, "blend": list(blend),
                        "identities": [_identity(infos[u]) for u in style.uris]}}
    job = PairJob(content.id, style.id, content.uris[0], style.uris, blend, config, fingerprint,
                  tuple(j.key for j in jobs), inputs, weights_id)
    return job, jobs


def _identity(info: InputInfo) -> dict[str, object]:
    """What provenance records of an input's identity beside its sha256: bytes and version."""
    return {"bytes": info.identity.size, "version": info.identity.version} if info.identity else {}


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
