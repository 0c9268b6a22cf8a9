"""Planning that reads only what changed (tasks/plan_index.py), on local files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tasks.layout import DONE, PairOutcome
from tasks.manifest import load_manifest
from tasks.plan import build_plan, record_results
from tasks.stores.local import LocalStorage
from tests.conftest import make_image


class CountingStorage(LocalStorage):
    """A local output that counts the provenance files planning reads."""

    reads = 0

    def read_versioned(self, key: str):  # type: ignore[no-untyped-def]
        CountingStorage.reads += 1
        return super().read_versioned(key)


def _write_results(plan, output: LocalStorage) -> None:
    """Results the way a run writes them: image first, provenance (with the fingerprint) last."""
    for job in plan.todo:
        output.write(job.image_key, b"png")
        output.write(job.provenance_key, json.dumps({"fingerprint": job.fingerprint, "inputs": job.inputs}).encode())
    record_results(plan, output, [PairOutcome(j.content, j.style, DONE) for j in plan.todo])


def test_second_plan_reads_no_input_and_no_provenance_and_a_rewrite_keeping_size_and_mtime_is_seen(tmp_path: Path):
    # BMP: the same dimensions give the same file size, so only the bytes differ.
    for i in range(2):
        make_image(40, 30, seed=i).save(tmp_path / f"c{i}.bmp")
    make_image(32, 32, seed=9, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: idx\ncache: cache\ncontents: ['c*.bmp']\nstyles: [s.png]\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    output = CountingStorage(tmp_path / "out")

    first = build_plan(manifest, output)
    assert first.inputs_read == 3 and len(first.todo) == 2
    _write_results(first, output)
    record = json.loads(output.read("results/c0--s.json"))
    assert record["inputs"]["content"]["bytes"] == (tmp_path / "c0.bmp").stat().st_size

    CountingStorage.reads = 0
    second = build_plan(manifest, output)
    assert (second.inputs_read, len(second.skipped), len(second.todo), CountingStorage.reads) == (0, 2, 0, 0)
    assert [j.fingerprint for j in second.skipped] == [j.fingerprint for j in first.todo]

    # New bytes, same size, mtime set back: inode and ctime still change, so it is read again.
    photo = tmp_path / "c0.bmp"
    before = photo.stat()
    make_image(40, 30, seed=7).save(photo)
    os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert photo.stat().st_size == before.st_size and photo.stat().st_mtime_ns == before.st_mtime_ns
    third = build_plan(manifest, output)
    assert third.inputs_read == 1 and [j.content for j in third.todo] == ["c0"]
    assert [j.content for j in third.skipped] == ["c1"]


def test_without_an_index_results_are_still_found_done_by_reading_their_provenance(tmp_path: Path):
    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=9, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: idx\ncache: cache\ncontents: [c.png]\nstyles: [s.png]\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    output = CountingStorage(tmp_path / "out")
    _write_results(build_plan(manifest, output), output)
    for index in (tmp_path / "cache" / "plan-index").iterdir():
        index.unlink()  # lost, or made by another machine's cache

    CountingStorage.reads = 0
    plan = build_plan(manifest, output)
    assert len(plan.skipped) == 1 and plan.inputs_read == 2 and CountingStorage.reads == 1
    # A provenance that no longer matches (another config wrote it) is not trusted from the index.
    output.write("results/c--s.json", json.dumps({"fingerprint": "0" * 64}).encode())
    assert [j.name for j in build_plan(manifest, output).todo] == ["c--s"]


def test_two_runs_saving_the_index_at_once_keep_each_others_entries(tmp_path: Path):
    from tasks.plan_index import KnownInput, PlanIndex
    from tasks.stores import ObjectInfo

    one, two = (PlanIndex.open(str(tmp_path / "cache"), "s3://b/out") for _ in range(2))
    one.record_input("s3://b/a.jpg", ObjectInfo("a.jpg", 10, "etag-a"), KnownInput("a" * 64, (4, 3)))
    two.record_result("x--y", ObjectInfo("results/x--y.json", 99, "etag-p"), "f" * 64)
    one.save()
    two.save()  # the stored index changed since `two` read it: merged, not overwritten
    merged = PlanIndex.open(str(tmp_path / "cache"), "s3://b/out")
    assert merged.input("s3://b/a.jpg", ObjectInfo("a.jpg", 10, "etag-a")) == KnownInput("a" * 64, (4, 3))
    assert merged.input("s3://b/a.jpg", ObjectInfo("a.jpg", 10, "etag-new")) is None  # new bytes: unknown
    assert merged.fingerprint("x--y", ObjectInfo("results/x--y.json", 99, "etag-p")) == "f" * 64
