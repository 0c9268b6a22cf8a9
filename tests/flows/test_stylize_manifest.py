"""End to end through the Prefect flow, against a real (test-harness) Prefect server."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from flows.stylize_manifest import run_manifest
from tasks.options import RunOptions
from tests.conftest import make_image


def write_manifest(folder: Path, contents: int, styles: int, *, extra: str = "",
                   engine: str = "{size: 32, iterations: 3}", weights: Path | None = None) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(contents):
        make_image(48, 36, seed=i).save(images / f"photo{i}.png")
    for j in range(styles):
        make_image(40, 40, seed=100 + j, kind="style").save(images / f"art{j}.png")
    style_lines = "\n".join(f"  - {{id: art{j}, uri: images/art{j}.png}}" for j in range(styles))
    engine_map = engine[:-1] + f", weights: '{weights or 'random:7'}'}}"
    text = f"""version: 1
name: {folder.name}
output: out
cache: cache
contents:
  - images/photo*.png
styles:
{style_lines}
engine: {engine_map}
{extra}"""
    path = folder / "manifest.yaml"
    path.write_text(text)
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_three_by_two_end_to_end_then_skip_then_force(tmp_path: Path, prefect_server: None,
                                                       weights_file: Path) -> None:
    manifest = write_manifest(tmp_path / "gallery-a", contents=3, styles=2, weights=weights_file)
    out = manifest.parent / "out"

    state, report = run_manifest(str(manifest), RunOptions(batch_size=2))
    assert state.is_completed(), state.message
    assert report["counts"] == {"done": 6, "skipped": 0, "failed": 0}
    assert report["style_targets"]["computed"] == 2  # one per style, whatever the contents
    for c in range(3):
        for s in range(2):
            name = f"photo{c}--art{s}"
            assert (out / "results" / f"{name}.png").is_file()
            provenance = json.loads((out / "results" / f"{name}.json").read_text())
            assert provenance["pair"] == name and provenance["weights"]["kind"] == "file"
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["counts"]["done"] == 6
    gallery = (out / "index.html").read_text()
    assert gallery.count("data-pair=") == 6 and 'href="results/photo2--art1.png"' in gallery  # result images

    before = tree_digest(out / "results")
    state, report = run_manifest(str(manifest), RunOptions(batch_size=2))
    assert report["counts"] == {"done": 0, "skipped": 6, "failed": 0}
    assert report["style_targets"]["computed"] == 0 and report["task_runs"] == 0
    assert tree_digest(out / "results") == before  # every byte as it was

    time.sleep(1.1)  # provenance records the creation time to the second
    state, report = run_manifest(str(manifest), RunOptions(batch_size=2, force=True))
    assert report["counts"] == {"done": 6, "skipped": 0, "failed": 0}
    assert report["style_targets"]["computed"] == 0  # the persistent cache still holds both styles
    after = tree_digest(out / "results")
    assert all(after[k] != before[k] for k in before if k.endswith(".json"))


def test_a_corrupt_image_fails_only_its_pairs(tmp_path: Path, prefect_server: None) -> None:
    manifest = write_manifest(tmp_path / "gallery-b", contents=3, styles=2)
    photo = manifest.parent / "images" / "photo1.png"
    photo.write_bytes(photo.read_bytes()[:200])  # truncated: header fine, pixels missing

    state, report = run_manifest(str(manifest), RunOptions(batch_size=4))
    assert state.is_failed() and "2 of 6 pairs failed" in state.message
    failed = {(p["content"], p["style"]): p["reason"] for p in report["pairs"] if p["status"] == "failed"}
    assert set(failed) == {("photo1", "art0"), ("photo1", "art1")}
    assert all("photo1.png" in reason for reason in failed.values())
    assert report["counts"]["done"] == 4
    out = manifest.parent / "out"
    assert sorted(p.name for p in (out / "results").glob("*.png")) == [
        "photo0--art0.png", "photo0--art1.png", "photo2--art0.png", "photo2--art1.png"]
    assert "failed" in (out / "index.html").read_text()


def test_four_hundred_pairs_run_in_far_fewer_task_runs(tmp_path: Path, prefect_server: None) -> None:
    manifest = write_manifest(tmp_path / "gallery-big", contents=20, styles=20,
                              engine="{size: 32, iterations: 1}")
    state, report = run_manifest(str(manifest), RunOptions(batch_size=16))
    assert state.is_completed(), state.message
    assert report["counts"]["done"] == 400
    assert report["style_targets"]["computed"] == 20
    assert report["task_runs"] == 20 + 25  # 20 style targets + 400 pairs in batches of 16
    assert len(list((manifest.parent / "out" / "results").glob("*.png"))) == 400


def test_gpu_work_can_hold_a_prefect_global_concurrency_limit(tmp_path: Path, prefect_server: None) -> None:
    from prefect.client.orchestration import get_client

    manifest = write_manifest(tmp_path / "gallery-limit", contents=1, styles=1)
    state, report = run_manifest(str(manifest), RunOptions(gpu_limit="nst-gpu-test", gpu_slots=2))
    assert state.is_completed(), state.message
    assert report["counts"]["done"] == 1
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("nst-gpu-test")
    assert limit.limit == 2 and limit.active_slots == 0  # created with the slots asked, all released


def test_a_run_publishes_progress_results_and_gallery_artifacts(tmp_path: Path, prefect_server: None) -> None:
    from prefect.artifacts import Artifact

    manifest = write_manifest(tmp_path / "Gallery_Art", contents=2, styles=1)
    photo = manifest.parent / "images" / "photo1.png"
    photo.write_bytes(photo.read_bytes()[:200])
    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
    progress = Artifact.get("nst-gallery-art-progress")
    results = Artifact.get("nst-gallery-art-results")
    gallery = Artifact.get("nst-gallery-art-gallery")
    assert progress is not None and progress.type == "progress" and float(progress.data) == 100.0
    assert results is not None and results.type == "table"
    rows = json.loads(results.data) if isinstance(results.data, str) else results.data
    assert {(r["pair"], r["status"]) for r in rows} == {("photo0--art0", "done"), ("photo1--art0", "failed")}
    assert gallery is not None and "thumbs/photo0--art0.jpg" in gallery.data and "## Failed" in gallery.data


def test_a_partial_rerun_keeps_the_other_pairs_in_run_json_and_the_gallery(tmp_path: Path,
                                                                           prefect_server: None) -> None:
    manifest = write_manifest(tmp_path / "partial", contents=2, styles=2)
    out = manifest.parent / "out"
    state, _ = run_manifest(str(manifest), RunOptions(batch_size=4))
    assert state.is_completed()
    state, report = run_manifest(str(manifest), RunOptions(batch_size=4, force=True, only=("photo1",)))
    assert state.is_completed() and report["counts"] == {"done": 2, "skipped": 0, "failed": 0}
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["output_counts"] == {"done": 4, "skipped": 0, "failed": 0} and run_json["carried_over"] == 2
    assert {(p["content"], p["style"]) for p in run_json["pairs"]} == {
        (f"photo{i}", f"art{j}") for i in range(2) for j in range(2)}
    assert (out / "index.html").read_text().count("data-pair=") == 4


def test_file_names_in_failure_reasons_cannot_inject_markup_into_the_ui(tmp_path: Path, prefect_server: None) -> None:
    from prefect.artifacts import Artifact

    folder = tmp_path / "inject"
    manifest = write_manifest(folder, contents=1, styles=1)
    hostile = '<img src=x onerror="alert(1)">(javascript:alert(1)).png'  # '[' would make it a glob
    (folder / "images" / hostile).write_bytes(b"not an image")
    text = manifest.read_text().replace("  - images/photo*.png", f"  - images/photo*.png\n  - {{id: evil, uri: 'images/{hostile}'}}")
    manifest.write_text(text)
    state, report = run_manifest(str(manifest), RunOptions(batch_size=1))
    assert report["counts"]["failed"] == 1 and report["counts"]["done"] == 1
    gallery = Artifact.get("nst-inject-gallery")
    assert gallery is not None and "evil" in str(gallery.data)
    markdown = str(gallery.data)
    assert "<img" not in markdown and "\\(javascript:" in markdown  # no live HTML; the bracket escaped
    assert "&lt;img src=x onerror=&quot;alert\\(1\\)&quot;&gt;" in markdown  # shown as written
