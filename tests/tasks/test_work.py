"""The plain functions under the Prefect tasks: planning and batch work, without Prefect."""

import json
from pathlib import Path

import pytest

from tasks.manifest import load_manifest
from tasks.options import RunOptions
from tasks.plan import build_plan
from tasks.stores.local import LocalStorage
from tasks.style_cache import StyleCache
from tasks.engine_work import BatchFailed, compute_style_target, stylize_batch
from tests.conftest import make_image


def _manifest(tmp_path: Path, engine: str) -> Path:
    for i in range(2):
        make_image(40, 30, seed=i).save(tmp_path / f"c{i}.png")
    make_image(32, 32, seed=9, kind="style").save(tmp_path / "s.png")
    path = tmp_path / "m.yaml"
    path.write_text(f"version: 1\nname: w\ncontents: [c*.png]\nstyles: [s.png]\nengine: {engine}\n")
    return path


def test_batch_with_one_undecodable_content_still_finishes_the_other(tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path, "{size: 32, iterations: 2, weights: random, match_histogram: true}"))
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))
    plan = build_plan(manifest, output, RunOptions(batch_size=4))
    assert plan.style_jobs == []  # colour-matched targets depend on the content: made in the batch
    assert [len(b) for b in plan.batches] == [2]
    (tmp_path / "c1.png").write_bytes((tmp_path / "c1.png").read_bytes()[:150])  # breaks after planning
    with pytest.raises(BatchFailed) as info:
        stylize_batch(plan.batches[0], output, cache)
    statuses = {o.content: o.status for o in info.value.outcomes}
    assert statuses == {"c0": "done", "c1": "failed"}
    assert "c1.png" in next(o.reason for o in info.value.outcomes if o.status == "failed")
    record = json.loads(output.read("results/c0--s.json"))
    assert record["fingerprint"] == plan.batches[0][0].fingerprint and record["config"]["match_histogram"]
    assert not output.exists("results/c1--s.png") and not output.exists("results/c1--s.json")


def test_style_target_is_computed_once_then_served_from_the_cache(tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path, "{size: 32, iterations: 1, weights: random, scales: [0.5, 1]}"))
    plan = build_plan(manifest, LocalStorage(tmp_path / "out"))
    cache = StyleCache(LocalStorage(tmp_path / "cache"))
    assert len(plan.style_jobs) == 2  # one style at two scales
    assert [compute_style_target(job, cache) for job in plan.style_jobs] == [True, True]
    assert [compute_style_target(job, cache) for job in plan.style_jobs] == [False, False]
    assert build_plan(manifest, LocalStorage(tmp_path / "out"), cached=cache.has).cached_styles == \
        {job.key for job in plan.style_jobs}


def test_a_batch_that_runs_out_of_cuda_memory_is_split_and_every_pair_finishes(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import torch

    from nst_engine import batching
    from nst_engine.optimize import stylize as real_stylize
    from tasks import engine_work

    calls: list[int] = []

    def out_of_memory_above_one(contents: list, *args: object, **kwargs: object) -> object:
        calls.append(len(contents))
        if len(contents) > 1:  # what CUDA raises when the batch does not fit
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_stylize(contents, *args, **kwargs)

    monkeypatch.setattr(engine_work, "stylize_batched",
                        functools.partial(batching.stylize_batched, stylize_fn=out_of_memory_above_one))
    manifest = load_manifest(_manifest(tmp_path, "{size: 32, iterations: 3, weights: random}"))
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))
    plan = build_plan(manifest, output, RunOptions(batch_size=4))
    assert [len(b) for b in plan.batches] == [2]
    outcomes = stylize_batch(plan.batches[0], output, cache)
    assert [o.status for o in outcomes] == ["done", "done"] and calls == [2, 1, 1]
    for outcome in outcomes:
        record = json.loads(output.read(f"results/{outcome.content}--{outcome.style}.json"))
        assert record["batch"] == 1 and record["peak_memory_bytes_per_image"] is None  # no CUDA here
        assert [scale["stop"] for scale in record["optimization"]] in (["cap"], ["converged"], ["stalled"])
