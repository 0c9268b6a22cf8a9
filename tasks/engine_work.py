"""The work a task does, as plain functions: compute a style target; stylize a batch of pairs.

Each function writes its own outputs and returns small metadata (docs/design.md: results stay out
of Prefect's memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from nst_engine import EngineConfig, ProgressEvent, StyleTargets, compute_style_targets, load_image
from nst_engine.batching import stylize_batched
from nst_engine.errors import EngineError
from nst_engine.images import encode_image, resize_max_side, thumbnail, to_tensor
from nst_engine.optimize import MIN_SIDE, resolve_device, style_block_planner, style_tensors
from nst_engine.provenance import build_provenance
from nst_engine.vgg import build_extractor, weights_identity
from tasks.integrity import check_weights, read_checked
from tasks.interrupt import RunStopped, request_stop, stop_reason
from tasks.layout import DONE, FAILED, PairOutcome
from tasks.plan import PairJob, StyleJob, check_working_sizes
from tasks.stores import Storage, StorageError
from tasks.style_cache import StyleCache, style_key
from tasks.weights import local_weights

log = logging.getLogger(__name__)


class BatchFailed(Exception):
    """Some pairs of a batch failed; `outcomes` holds every pair's outcome (the rest are done)."""

    def __init__(self, outcomes: list[PairOutcome]) -> None:
        self.outcomes = outcomes
        failed = [o for o in outcomes if o.status == FAILED]
        super().__init__(f"{len(failed)} of {len(outcomes)} pairs failed: "
                         + "; ".join(f"{o.label}: {o.reason}" for o in failed))


def extractor_for(config: EngineConfig, device: torch.device) -> Any:
    """The extractor and its WeightsInfo; s3:// weights are fetched to a local file first."""
    layers = set(config.content_layers) | set(config.style_layers)
    extractor, weights = build_extractor(local_weights(config.weights), layers, config.pooling, device,
                                          config.input_convention)
    if weights.source != config.weights:  # provenance names the URI the user gave, not our copy
        weights = dataclasses.replace(weights, source=config.weights)
    return extractor, weights


def compute_style_target(job: StyleJob, cache: StyleCache, device: str = "auto") -> bool:
    """Make sure the cache holds `job`'s targets. True when they had to be computed."""
    if cache.get(job.key) is not None:
        return False
    config = EngineConfig(weights=job.weights, pooling=job.pooling, style_layers=job.layers, device=device,
                          style_statistic=job.statistic)
    torch_device = resolve_device(device)
    # The entry is stored under a key made of what planning hashed: only those bytes may fill it.
    check_weights(job.weights, job.weights_id)
    extractor, _ = extractor_for(config, torch_device)
    check_weights(job.weights, job.weights_id)  # and not swapped while the extractor loaded
    shas: Sequence[str | None] = job.sha256s or [None] * len(job.uris)
    images = [load_image(read_checked(uri, sha), name=uri) for uri, sha in zip(job.uris, shas)]
    tensors = style_tensors(images, job.side, None, config)
    # A print-size style image (size: 4096) runs in blocks when one pass does not fit: the same statistic.
    targets = compute_style_targets(extractor, tensors, job.layers, job.blend,
                                    meta={"style": job.style, "side": str(job.side)}, statistic=job.statistic,
                                    blocks=style_block_planner(config, torch_device))
    cache.put(job.key, targets)
    return True


def stylize_batch(jobs: Sequence[PairJob], output: Storage, cache: StyleCache, *,
                  on_progress: Callable[[ProgressEvent], None] | None = None,
                  memory_budget: int | None = None) -> list[PairOutcome]:
    """Stylize pairs that share settings and output shape in one engine call (split into smaller
    ones when `memory_budget` bytes, or the device's free memory, cannot hold them all).

    A pair whose input cannot be decoded fails alone; the others still run. Each result is
    written image first, then provenance (whose fingerprint marks the pair as done).
    """
    outcomes: dict[str, PairOutcome] = {}
    ready: list[_Ready] = []
    stopped = stop_reason()
    if stopped:  # the run was asked to stop before this batch started
        raise BatchFailed([job.failed(f"not started: {stopped}; rerun to finish it") for job in jobs])
    for job in jobs:
        try:
            planned = job.inputs.get("style", {}).get("sha256") or [None] * len(job.style_uris)  # type: ignore[attr-defined]
            content = load_image(read_checked(job.content_uri, job.inputs.get("content", {}).get("sha256")),  # type: ignore[attr-defined]
                                 name=job.content_uri)
            styles = [load_image(read_checked(uri, sha), name=uri) for uri, sha in zip(job.style_uris, planned)]
            check_working_sizes(job.config, (job.content_uri, content.size),  # a file changed since planning
                                [(uri, image.size) for uri, image in zip(job.style_uris, styles)])
            ready.append(_Ready(job, content, styles))
        except (EngineError, StorageError) as exc:
            outcomes[job.name] = job.failed(str(exc))
    if ready:
        _run_engine(ready, output, cache, outcomes, on_progress, memory_budget)
    ordered = [outcomes[job.name] for job in jobs]
    if any(o.status == FAILED for o in ordered):
        raise BatchFailed(ordered)
    return ordered


@dataclass
class _Ready:
    """One pair whose inputs are decoded and checked, waiting for the engine call."""

    job: PairJob
    content: Any  # PIL image
    styles: list[Any]


def _run_engine(ready: list[_Ready], output: Storage, cache: StyleCache, outcomes: dict[str, PairOutcome],
                on_progress: Callable[[ProgressEvent], None] | None, memory_budget: int | None) -> None:
    """One engine call for the `ready` pairs (same settings), then each result written."""
    config = ready[0].job.config
    device = resolve_device(config.device)
    try:  # results are recorded under fingerprints made of the planned weights: only those may make them
        check_weights(config.weights, ready[0].job.weights_id)
        extractor, weights = extractor_for(config, device)
        check_weights(config.weights, ready[0].job.weights_id)
    except StorageError as exc:
        _fail_all(ready, outcomes, str(exc))
        return
    targets = _BatchTargets(ready, cache, config, extractor, device, weights_identity(local_weights(config.weights)),
                            memory_budget)
    try:
        # Memory-sized batches; a batch that runs out of CUDA memory is split and retried, and a
        # pair that does not fit alone fails alone (nst_engine.batching).
        result = stylize_batched([r.content for r in ready], [r.styles for r in ready], config, callback=on_progress,
                                 targets_for=targets.get, extractor=extractor, memory_budget=memory_budget)
    except RunStopped as exc:  # abandoned between iterations: nothing of this batch was written
        _fail_all(ready, outcomes, f"interrupted: {exc}; rerun to finish it")
        return
    except Exception as exc:  # noqa: BLE001 - the whole engine call failed: every pair in it did
        log.exception("engine failed on %s", ", ".join(r.job.name for r in ready))
        _fail_all(ready, outcomes, f"{type(exc).__name__}: {exc}")
        return
    for pair, item in zip(ready, result.items):
        job = pair.job
        outcomes[job.name] = _write_result(job, item, weights, result, output) if item.ok else job.failed(str(item.error))


def _fail_all(ready: list[_Ready], outcomes: dict[str, PairOutcome], reason: str) -> None:
    for pair in ready:
        outcomes[pair.job.name] = pair.job.failed(reason)


class _BatchTargets:
    """The style targets of a batch's pairs, by pair index and side: from the cache (read once
    per batch: pairs of one style share an entry), or computed here when the colours are matched
    to each content or an entry was lost since planning."""

    def __init__(self, ready: list[_Ready], cache: StyleCache, config: EngineConfig, extractor: Any,
                 device: torch.device, weights_id: str, memory_budget: int | None) -> None:
        self.ready, self.cache, self.config, self.extractor = ready, cache, config, extractor
        self.device, self.weights_id, self.memory_budget = device, weights_id, memory_budget
        self.loaded: dict[str, StyleTargets] = {}

    def get(self, item: int, side: int) -> StyleTargets:
        pair, config = self.ready[item], self.config
        job = pair.job
        matched_to = job.inputs["content"]["sha256"] if config.match_histogram else None  # type: ignore[index]
        key = style_key(config, job.inputs["style"]["sha256"], job.style_blend, side,  # type: ignore[index]
                        self.weights_id, matched_to)
        if key not in self.loaded:
            targets = self.cache.get(key)
            if targets is None:
                targets = self._compute(pair, side)
                self.cache.put(key, targets)
            self.loaded[key] = targets.to(self.device)
        return self.loaded[key]

    def _compute(self, pair: _Ready, side: int) -> StyleTargets:
        config = self.config
        reference = None
        if config.match_histogram:  # the style's colours matched to this content's
            reference = to_tensor(resize_max_side(pair.content, config.size, MIN_SIDE)).to(self.device)
        tensors = style_tensors(pair.styles, side, reference, config)
        # A print-size style image runs in blocks when one pass does not fit: the same statistic.
        return compute_style_targets(self.extractor, tensors, config.style_layers, pair.job.style_blend,
                                     statistic=config.style_statistic,
                                     blocks=style_block_planner(config, self.device, self.memory_budget))


def _write_result(job: PairJob, item: Any, weights: Any, result: Any, output: Storage) -> PairOutcome:
    """Image, thumbnail, then provenance (last: it marks the pair done); the pair's outcome.

    Measured: the wall time of the engine call that made the pair. Its pairs are optimised
    together (one forward/backward over the batch), so no pair has a time of its own unless it
    ran alone; the outcome says how many pairs shared the call rather than inventing a split.
    """
    config = job.config
    image, losses, seconds = item.pil_image(), item.losses, item.batch_seconds
    try:
        record = build_provenance(config, weights, losses, seconds, result.device, job.inputs,
                                  fingerprint=job.fingerprint, optimization=item.optimization,
                                  extra={"pair": job.name, "batch": item.batch, "precision": result.precision,
                                         "peak_memory_bytes_per_image": item.peak_memory_bytes})
        meta = {"fingerprint": job.fingerprint, "content": job.content, "style": job.style}
        png = encode_image(image)
        # What a later plan checks before it counts the pair done (tasks/plan.py _is_done).
        record["image"] = {"bytes": len(png), "sha256": hashlib.sha256(png).hexdigest()}
        output.write(job.image_key, png, content_type="image/png", metadata=meta)
        output.write(job.thumbnail_key, encode_image(thumbnail(image), "JPEG", 85),
                     content_type="image/jpeg", metadata=meta)
        output.write(job.provenance_key, json.dumps(record, indent=2).encode(),  # last: marks it done
                     content_type="application/json", metadata=meta)
    except StorageError as exc:
        if exc.unreachable:  # nothing more can be saved: the batches not started fail at once
            request_stop(f"the output store did not answer ({exc.detail})")
        return job.failed(str(exc))
    return PairOutcome(job.content, job.style, DONE, losses=record["losses"], seconds=round(seconds, 3),
                       batch_size=item.batch, fingerprint=job.fingerprint)
