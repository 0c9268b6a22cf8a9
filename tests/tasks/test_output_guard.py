"""tasks.output_guard: an output location is the pipeline's only when it is empty, missing or
marked as its own; roots, home and system folders never are; `nst stylize` keeps its inputs and
any file it did not make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.layout import PairOutcome
from tasks.report import run_report
from tasks.output_guard import (OUTPUT_MARKER, OutputRefusedError, check_output_location, check_stylize_output,
                                claim_output, is_pipeline_output)
from tasks.stores.local import LocalStorage


def _refused(storage: LocalStorage, **options: object) -> str:
    with pytest.raises(OutputRefusedError) as info:
        check_output_location(storage, **options)  # type: ignore[arg-type]
    return str(info.value)


def test_missing_and_empty_folders_are_the_pipelines(tmp_path: Path) -> None:
    check_output_location(LocalStorage(tmp_path / "new" / "out"))
    (tmp_path / "empty").mkdir()
    check_output_location(LocalStorage(tmp_path / "empty"))


def test_a_users_folder_is_refused_unless_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    for name in ("index.html", "run.json", "about.html", "style.css"):
        (folder / name).write_text("mine")
    message = _refused(LocalStorage(folder))
    assert message.startswith(f"output {folder} is not empty (about.html, index.html, run.json and 1 more) ")
    assert "not an nst-pipeline output" in message
    # Consent covers other files beside the run, never replacing a gallery or report
    with pytest.raises(OutputRefusedError, match="holds index.html, run.json that this pipeline would write over"):
        check_output_location(LocalStorage(folder), allow_non_empty=True)
    (folder / "index.html").unlink()
    (folder / "run.json").unlink()
    check_output_location(LocalStorage(folder), allow_non_empty=True)  # the user said so
    assert (folder / "about.html").read_text() == "mine"  # checking writes nothing


def test_a_users_run_json_is_not_the_pipelines_but_a_report_is(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"name": "my app", "pairs": "none"}))
    assert not is_pipeline_output(storage)
    _refused(storage)
    report = run_report("monet", [PairOutcome("c", "s", "done")], {"seconds": 1.0})
    (tmp_path / "run.json").write_text(json.dumps(report))
    (tmp_path / "results").mkdir()
    assert is_pipeline_output(storage)
    check_output_location(storage)


def test_the_marker_claims_a_folder_before_any_report(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "out")
    check_output_location(storage)
    claim_output(storage)  # a run starts
    (tmp_path / "out" / "results").mkdir()
    (tmp_path / "out" / "results" / "c--s.png").write_bytes(b"png")  # then it is stopped before run.json
    assert is_pipeline_output(storage)
    check_output_location(storage)  # the next run finds its own folder
    claim_output(storage)  # idempotent
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [OUTPUT_MARKER, "results"]
    (tmp_path / "out" / OUTPUT_MARKER).write_text("someone else's")
    assert not is_pipeline_output(storage)  # the marker's content counts, not only its name


def test_the_manifests_own_folder_only_while_it_holds_just_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\n")
    check_output_location(LocalStorage(tmp_path), manifest=manifest)
    (tmp_path / "index.html").write_text("my page")
    (tmp_path / "run.json").write_text("{}")
    for allow in (False, True):  # a project folder is never written over, even when allowed
        message = _refused(LocalStorage(tmp_path), manifest=manifest, allow_non_empty=allow)
        assert message.startswith(f"output {tmp_path} is the manifest's own folder and holds other files "
                                  "(index.html, run.json)")
        assert "give a subfolder such as out/<name>" in message
    check_output_location(LocalStorage(tmp_path / "out" / "x"), manifest=manifest)


@pytest.mark.parametrize("where,words", [
    ("/", "is a filesystem root"),
    ("/etc", "is inside the system folder /etc"),
    ("/usr/share/nst", "is inside the system folder /usr"),
    ("/tmp", "is a system folder"),
    ("/home", "is a system folder"),
])
def test_roots_and_system_folders_are_refused_even_when_allowed(where: str, words: str) -> None:
    assert words in _refused(LocalStorage(where), allow_non_empty=True)


def test_a_dotdot_path_that_resolves_to_a_system_folder_is_refused(tmp_path: Path) -> None:
    sneaky = tmp_path.joinpath(*[".."] * len(tmp_path.parts), "etc")
    assert "is inside the system folder /etc" in _refused(LocalStorage(sneaky))
    (tmp_path / "link").symlink_to("/usr")
    assert "is inside the system folder /usr" in _refused(LocalStorage(tmp_path / "link" / "out"))


def test_the_home_folder_is_refused_but_a_folder_inside_it_is_fine(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "is your home folder" in _refused(LocalStorage(tmp_path), allow_non_empty=True)
    check_output_location(LocalStorage(tmp_path / "nst-out"))


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    assert _refused(LocalStorage(tmp_path / "out")) == f"output {tmp_path / 'out'} is a file; give a folder"


# ---- nst stylize --------------------------------------------------------------------------
def _stylize_files(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "photo.png", tmp_path / "art.jpg"
    content.write_bytes(b"content")
    style.write_bytes(b"style")
    return content, style


def _refused_stylize(image: Path, inputs: list[Path], overwrite: bool = False) -> str:
    with pytest.raises(OutputRefusedError) as info:
        check_stylize_output(image, image.with_suffix(".json"), inputs, overwrite=overwrite)
    return str(info.value)


def test_stylize_never_writes_over_an_input(tmp_path: Path) -> None:
    content, style = _stylize_files(tmp_path)
    for overwrite in (False, True):
        message = _refused_stylize(content, [content, style], overwrite)
        assert message == (f"{content} is also an input ({content}); the input would be replaced: "
                           "give another output name")
    (tmp_path / "sub").mkdir()
    assert "is also an input" in _refused_stylize(tmp_path / "sub" / ".." / "art.jpg", [content, style], True)
    assert content.read_bytes() == b"content"


def test_stylize_keeps_files_it_did_not_make_unless_told(tmp_path: Path) -> None:
    content, style = _stylize_files(tmp_path)
    result = tmp_path / "result.png"
    check_stylize_output(result, result.with_suffix(".json"), [content, style])  # nothing there yet
    (tmp_path / "result.json").write_text('{"my": "notes"}')  # an unrelated file of the user's
    message = _refused_stylize(result, [content, style])
    assert message == (f"{tmp_path / 'result.json'} already exist(s) and were not made by nst stylize; "
                       "give another output name, or --overwrite to replace them")
    check_stylize_output(result, result.with_suffix(".json"), [content, style], overwrite=True)


def test_stylize_may_replace_its_own_result(tmp_path: Path) -> None:
    content, style = _stylize_files(tmp_path)
    result = tmp_path / "result.png"
    result.write_bytes(b"png")
    record = {"fingerprint": "f", "config_fingerprint": "f", "config": {}, "versions": {}, "losses": {}}
    result.with_suffix(".json").write_text(json.dumps(record))
    check_stylize_output(result, result.with_suffix(".json"), [content, style])  # a re-run of the same command


@pytest.mark.parametrize("name", ["out.gif", "out.tiff", "out"])
def test_stylize_refuses_an_unwritable_format_before_any_work(tmp_path: Path, name: str) -> None:
    content, style = _stylize_files(tmp_path)
    message = _refused_stylize(tmp_path / name, [content, style])
    assert message.startswith(f"{tmp_path / name}: unknown image extension")
    assert "'.jpeg', '.jpg', '.png', '.webp'" in message


def test_stylize_output_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    content, style = _stylize_files(tmp_path)
    (tmp_path / "dir.png").mkdir()
    assert "is a folder" in _refused_stylize(tmp_path / "dir.png", [content, style], True)
