"""Where the pipeline may write. `nst stylize --save-every` never
replaces an input or a file it did not make; symlinks that leave an output or cache folder are
refused; `cache:` is guarded like `output:`; a dry run writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst_cli.stylize_command import stylize_files
from nst_engine import EngineConfig
from tasks.output_guard import OutputRefusedError
from tests.conftest import make_image


def _stylize_inputs(folder: Path) -> tuple[Path, Path]:
    make_image(40, 30, seed=1).save(folder / "c.png")
    make_image(32, 32, seed=2, kind="style").save(folder / "s.png")
    return folder / "c.png", folder / "s.png"


def test_save_every_never_writes_over_an_input(tmp_path: Path) -> None:
    content, style = _stylize_inputs(tmp_path)
    victim = tmp_path / "out.scale1.iter0002.png"
    content.rename(victim)
    before = victim.read_bytes()
    config = EngineConfig(size=32, iterations=2, weights="random")
    with pytest.raises(OutputRefusedError, match="is an input"):
        stylize_files(victim, [style], tmp_path / "out.png", config, progress=False, overwrite=True, save_every_n=2)
    assert victim.read_bytes() == before and not (tmp_path / "out.png").exists()


def test_save_every_replaces_only_snapshots_it_made(tmp_path: Path) -> None:
    content, style = _stylize_inputs(tmp_path)
    mine = tmp_path / "out.scale1.iter0001.png"
    mine.write_bytes(b"a user's file")
    config = EngineConfig(size=32, iterations=2, weights="random")
    with pytest.raises(OutputRefusedError, match="would replace .*out.scale1.iter0001.png, not made by nst stylize"):
        stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)
    assert mine.read_bytes() == b"a user's file"
    mine.unlink()
    record = stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)
    assert record["snapshots"] == ["out.scale1.iter0001.png", "out.scale1.iter0002.png"]
    stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)  # a rerun: ours


def test_a_symlink_inside_the_output_that_leaves_it_is_never_written_through(tmp_path: Path) -> None:
    from tasks.stores import StorageError
    from tasks.stores.local import LocalStorage

    outside = tmp_path / "system"
    outside.mkdir()
    (outside / "a--b.png").write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results").symlink_to(outside)
    (out / "thumbs").mkdir()
    (out / "thumbs" / "x.jpg").symlink_to(outside / "a--b.png")
    storage = LocalStorage(out)
    for key in ("results/a--b.png", "results/new.png", "thumbs/x.jpg"):
        with pytest.raises(StorageError, match="leads out of .* through a symbolic link"):
            storage.write(key, b"ours")
    assert (outside / "a--b.png").read_bytes() == b"precious" and sorted(p.name for p in outside.iterdir()) == ["a--b.png"]
    (out / "inside").mkdir()
    (out / "link").symlink_to(out / "inside")  # a link that stays inside is fine
    storage.write("link/f.txt", b"ok")
    assert (out / "inside" / "f.txt").read_bytes() == b"ok"


def test_cache_is_guarded_like_output(tmp_path: Path) -> None:
    from tasks.manifest import ManifestError, parse_manifest

    for cache, words in (("/", "cache / is a filesystem root"), ("/etc/nst", "inside the system folder /etc"),
                         ("/tmp", "cache /tmp is a system folder")):
        with pytest.raises(ManifestError) as info:
            parse_manifest(f"version: 1\nname: x\ncontents: [s3://b/c.png]\nstyles: [s3://b/s.png]\ncache: {cache}\n",
                           base_dir=tmp_path, source="m.yaml")
        assert [p.field for p in info.value.problems] == ["cache"] and words in str(info.value)


def test_allow_non_empty_output_never_replaces_a_users_gallery_or_report(tmp_path: Path) -> None:
    from tasks.output_guard import check_output_location, is_pipeline_output
    from tasks.stores.local import LocalStorage

    for name in ("index.html", "run.json", "results"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
        (folder / name).write_text("{}") if "." in name else (folder / name).mkdir()
        with pytest.raises(OutputRefusedError, match=f"holds {name} that this pipeline would write over"):
            check_output_location(LocalStorage(folder), allow_non_empty=True)
        assert not is_pipeline_output(LocalStorage(folder))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    check_output_location(LocalStorage(tmp_path / "other"), allow_non_empty=True)  # still allowed


def test_dry_run_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nst_cli.main import main

    content, style = _stylize_inputs(tmp_path)
    cache = tmp_path / "cache"
    (tmp_path / "m.yaml").write_text(f"version: 1\nname: d\ncontents: [c.png]\nstyles: [s.png]\ncache: {cache}\n"
                                     "engine: {size: 32, iterations: 1, weights: random}\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["run", str(tmp_path / "m.yaml"), "--dry-run"]) == 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and not cache.exists()


def test_a_second_manifest_cannot_take_over_an_output(tmp_path: Path) -> None:
    from tasks.layout import PairOutcome
    from tasks.output_guard import check_output_location, claim_output, report_is_current
    from tasks.report import run_report
    from tasks.stores import write_json
    from tasks.stores.local import LocalStorage

    storage = LocalStorage(tmp_path / "out")
    check_output_location(storage, name="first")
    claim_output(storage, "first")  # a run stopped before its run.json: the marker names it
    with pytest.raises(OutputRefusedError, match="holds the run of the manifest named 'first', not 'second'"):
        check_output_location(storage, name="second")
    check_output_location(storage, name="first")
    assert not report_is_current(storage, "first")  # no run.json yet: a rerun writes it
    write_json(storage, "run.json", run_report("first", [PairOutcome("c", "s", "done")], {}))
    assert not report_is_current(storage, "first")  # no gallery
    storage.write("index.html", b"<html></html>")
    assert report_is_current(storage, "first") and not report_is_current(storage, "second")
    with pytest.raises(OutputRefusedError, match="named 'first', not 'second'"):
        check_output_location(storage, name="second")
