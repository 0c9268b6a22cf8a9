"""Hostile inputs in a manifest: planning never crashes, a pair whose own input cannot be
decoded fails alone with the file named, and the other pairs of its batch are done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.manifest import load_manifest
from tasks.options import RunOptions
from tasks.plan import build_plan
from tasks.stores.local import LocalStorage
from tasks.style_cache import StyleCache
from tasks.engine_work import BatchFailed, stylize_batch
from tests.conftest import make_image
from tests.hostile_images import decompression_bomb_png, grey_ramp, thin_strip_png, tiff16_big_endian, truncated_jpeg


def test_hostile_contents_fail_only_their_own_pairs(tmp_path: Path) -> None:
    make_image(40, 30, seed=1).save(tmp_path / "good.png")
    (tmp_path / "bomb.png").write_bytes(decompression_bomb_png(30000))
    (tmp_path / "scan.tif").write_bytes(tiff16_big_endian(grey_ramp(40, 30)))
    (tmp_path / "cut.jpg").write_bytes(truncated_jpeg(40, 30))
    (tmp_path / "strip.png").write_bytes(thin_strip_png(2, 60000))
    make_image(32, 32, seed=9, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: hostile\n"
                                     "contents: [good.png, bomb.png, scan.tif, cut.jpg, strip.png]\n"
                                     "styles: [s.png]\nengine: {size: 32, iterations: 2, weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))

    plan = build_plan(manifest, output, RunOptions(batch_size=4))  # used to crash on the bomb's header

    failed = {outcome.content: outcome.reason for outcome in plan.failed}
    assert set(failed) == {"bomb", "strip"}
    assert failed["bomb"].startswith(f"{tmp_path / 'bomb.png'}: ") and "decompression bomb" in failed["bomb"]
    assert failed["strip"].startswith(f"{tmp_path / 'strip.png'}: 2x60000 is too thin")
    assert [[job.content for job in batch] for batch in plan.batches] == [["good", "scan", "cut"]]

    with pytest.raises(BatchFailed) as info:
        stylize_batch(plan.batches[0], output, cache)
    outcomes = {o.content: o for o in info.value.outcomes}
    assert {c: o.status for c, o in outcomes.items()} == {"good": "done", "scan": "done", "cut": "failed"}
    assert outcomes["cut"].reason.startswith(f"{tmp_path / 'cut.jpg'}: corrupt or truncated image")
    assert "BytesIO" not in outcomes["cut"].reason
    for content in ("good", "scan"):
        record = json.loads(output.read(f"results/{content}--s.json"))
        assert record["pair"] == f"{content}--s" and output.exists(f"results/{content}--s.png")
    assert not output.exists("results/cut--s.png") and not output.exists("results/cut--s.json")


def test_a_file_that_turned_thin_after_planning_fails_alone(tmp_path: Path) -> None:
    for name in ("a", "b"):
        make_image(40, 30, seed=len(name)).save(tmp_path / f"{name}.png")
    make_image(32, 32, seed=9, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: t\ncontents: [a.png, b.png]\nstyles: [s.png]\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))
    plan = build_plan(load_manifest(tmp_path / "m.yaml"), output)
    (tmp_path / "b.png").write_bytes(thin_strip_png(2, 60000))  # replaced between planning and work
    with pytest.raises(BatchFailed) as info:
        stylize_batch(plan.batches[0], output, cache)
    outcomes = {o.content: o for o in info.value.outcomes}
    assert outcomes["a"].status == "done"
    assert outcomes["b"].status == "failed" and outcomes["b"].reason.startswith(f"{tmp_path / 'b.png'}: 2x60000")
