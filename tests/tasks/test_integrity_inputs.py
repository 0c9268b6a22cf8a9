"""Bytes read after planning are checked against the sha256 the plan recorded; a
changed style, content or weights file fails its pairs, and nothing is cached or written under
the old key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from nst_engine.vgg import random_state
from tasks.engine_work import BatchFailed, compute_style_target, stylize_batch
from tasks.integrity import InputChanged
from tasks.manifest import load_manifest
from tasks.plan import build_plan
from tasks.stores.local import LocalStorage
from tasks.style_cache import StyleCache
from tests.conftest import make_image


def _setup(tmp_path: Path, weights: str = "random") -> tuple[Path, object, LocalStorage, StyleCache]:
    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    make_image(32, 32, seed=3, kind="style").save(tmp_path / "other.png")
    (tmp_path / "m.yaml").write_text(f"version: 1\nname: w\ncontents: [c.png]\nstyles: [s.png]\n"
                                     f"engine: {{size: 32, iterations: 1, weights: {weights}}}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))
    return tmp_path, build_plan(manifest, output), output, cache


def test_a_style_replaced_after_planning_is_never_cached_under_the_old_key(tmp_path: Path) -> None:
    folder, plan, _, cache = _setup(tmp_path)
    shutil.copyfile(folder / "other.png", folder / "s.png")
    with pytest.raises(InputChanged, match=r"s\.png changed since this run planned it"):
        compute_style_target(plan.style_jobs[0], cache)  # type: ignore[attr-defined]
    assert not cache.has(plan.style_jobs[0].key)  # type: ignore[attr-defined]


def test_a_content_replaced_after_planning_fails_its_pair_and_writes_nothing(tmp_path: Path) -> None:
    folder, plan, output, cache = _setup(tmp_path)
    make_image(40, 30, seed=5).save(folder / "c.png")
    with pytest.raises(BatchFailed) as info:
        stylize_batch(plan.batches[0], output, cache)  # type: ignore[attr-defined]
    assert "c.png changed since this run planned it" in info.value.outcomes[0].reason
    assert output.list() == []


def test_weights_replaced_after_planning_fail_the_batch(tmp_path: Path) -> None:
    weights = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in random_state(7).items()}, weights)
    folder, plan, output, cache = _setup(tmp_path, weights=str(weights))
    torch.save({f"features.{k}": v for k, v in random_state(8).items()}, weights)
    with pytest.raises(InputChanged, match="weights .*vgg.pth changed since this run planned it"):
        compute_style_target(plan.style_jobs[0], cache)  # type: ignore[attr-defined]
    with pytest.raises(BatchFailed) as info:
        stylize_batch(plan.batches[0], output, cache)  # type: ignore[attr-defined]
    assert "changed since this run planned it" in info.value.outcomes[0].reason
    assert output.list() == [] and cache.storage.list("style-targets") == []


def test_unchanged_inputs_still_work(tmp_path: Path) -> None:
    _, plan, output, cache = _setup(tmp_path)
    assert compute_style_target(plan.style_jobs[0], cache)  # type: ignore[attr-defined]
    assert [o.status for o in stylize_batch(plan.batches[0], output, cache)] == ["done"]  # type: ignore[attr-defined]
