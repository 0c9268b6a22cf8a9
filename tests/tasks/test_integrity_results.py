"""A result counts as done only when its image is intact (size and sha256 as its
provenance records; an older provenance: the image decodes)."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.engine_work import stylize_batch
from tasks.manifest import load_manifest
from tasks.plan import build_plan, record_results
from tasks.stores.local import LocalStorage
from tasks.style_cache import StyleCache
from tests.conftest import make_image


def test_a_broken_image_is_never_counted_done(tmp_path: Path) -> None:
    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: w\ncontents: [c.png]\nstyles: [s.png]\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    output, cache = LocalStorage(tmp_path / "out"), StyleCache(LocalStorage(tmp_path / "cache"))
    plan = build_plan(manifest, output)
    outcomes = stylize_batch(plan.batches[0], output, cache)
    record_results(plan, output, outcomes)
    image = tmp_path / "out" / "results" / "c--s.png"
    record = json.loads((tmp_path / "out" / "results" / "c--s.json").read_text())
    assert record["image"]["bytes"] == image.stat().st_size and len(record["image"]["sha256"]) == 64
    assert len(build_plan(manifest, output).skipped) == 1  # intact: done

    good = image.read_bytes()
    image.write_bytes(b"")  # a 0-byte image beside a valid provenance
    assert len(build_plan(manifest, output).todo) == 1
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # same size, other bytes
    image.write_bytes(bytes(flipped))
    assert len(build_plan(manifest, output).todo) == 1
    image.write_bytes(good)
    assert len(build_plan(manifest, output).skipped) == 1

    del record["image"]  # a provenance from before this check: the image must decode
    (tmp_path / "out" / "results" / "c--s.json").write_text(json.dumps(record))
    image.write_bytes(good[: len(good) // 2])
    assert len(build_plan(manifest, output).todo) == 1
    image.write_bytes(good)
    assert len(build_plan(manifest, output).skipped) == 1
