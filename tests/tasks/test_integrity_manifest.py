"""Manifests: a scalar document, a system file named as a manifest, ids that differ
only in case, and object keys with '..' parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.manifest import ManifestError, load_manifest, parse_manifest


def _messages(text: str, base_dir: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, base_dir=base_dir, source="m.yaml")
    return [str(p) for p in info.value.problems]


def test_a_scalar_document_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    assert _messages("hello\n", tmp_path) == [
        "(top level): expected a mapping with keys version, name, output, cache, contents, styles, pairs, engine; "
        "got text of 5 characters: is this an nst manifest?"]


def test_a_file_that_is_no_manifest_is_never_quoted(tmp_path: Path) -> None:
    passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    hosts = "secret_token: s3cr3t-value\nother_secret: hunter2\n"
    for text in (passwd, hosts):
        shown = " ".join(_messages(text, tmp_path))
        assert "root" not in shown and "s3cr3t" not in shown and "secret_token" not in shown
    assert _messages(hosts, tmp_path) == ["(top level): is not an nst manifest: none of its 2 keys is one of version, "
                                          "name, output, cache, contents, styles, pairs, engine; start with `version: 1`"]


def test_system_file_through_load_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest("/etc/passwd")
    assert "root" not in str(info.value).replace("/etc/passwd", "")


def test_ids_differing_only_in_case_are_duplicates(tmp_path: Path) -> None:
    for name in ("Louvre.png", "louvre.jpg", "s.png"):
        (tmp_path / name).write_bytes(b"x")
    messages = _messages("version: 1\nname: x\ncontents: [Louvre.png, louvre.jpg]\nstyles: [s.png]\n", tmp_path)
    assert len(messages) == 1 and messages[0].startswith("contents[1].id: duplicate id 'louvre'")
    assert "'Louvre' differs only in case" in messages[0]


def test_object_keys_with_dot_dot_are_refused_at_validation(tmp_path: Path) -> None:
    messages = _messages("version: 1\nname: x\ncontents: ['s3://b/dir/../x.png']\nstyles: [s3://b/s.png]\n"
                         "output: s3://b/out/./run\n", tmp_path)
    assert any(m.startswith("contents[0]: 's3://b/dir/../x.png' has a '.' or '..' part in its key")
               and "s3://b/x.png" in m for m in messages)
    assert any(m.startswith("output: 's3://b/out/./run' has a '.' or '..' part") for m in messages)


def test_only_with_unknown_ids_is_refused_naming_them(tmp_path: Path) -> None:
    from tasks.options import RunOptions, RunOptionsError
    from tasks.plan import build_plan
    from tasks.stores.local import LocalStorage
    from tests.conftest import make_image

    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: o\ncontents: [c.png]\nstyles: [s.png]\n"
                                     "engine: {weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    with pytest.raises(RunOptionsError, match=r"only: unknown id\(s\) 'C', 'zz' in .*m.yaml; its contents are c, "
                                              "its styles s"):
        build_plan(manifest, LocalStorage(tmp_path / "out"), RunOptions(only=("C", "zz", "s")))
    assert len(build_plan(manifest, LocalStorage(tmp_path / "out"), RunOptions(only=("s",))).todo) == 1


def test_one_odd_or_missing_input_fails_only_itself_and_outputs_are_no_inputs(tmp_path: Path) -> None:
    from tasks.plan import build_plan
    from tasks.stores.local import LocalStorage
    from tests.conftest import make_image

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b", "my photo", "caf\u00e9\u202e"):
        make_image(40, 30, seed=len(name)).save(photos / f"{name}.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: n\noutput: photos/out\ncontents: ['photos/**/*.png', "
                                     "{id: gone, uri: photos/gone.png}]\nstyles: [s.png]\n"
                                     "engine: {size: 32, weights: random}\n")
    manifest = load_manifest(tmp_path / "m.yaml")
    assert [c.id for c in manifest.contents] == ["a", "b", "gone"]
    notes = [str(n) for n in manifest.notes]
    assert len(notes) == 3 and all(n.startswith("contents[0]: left out ") for n in notes[:2])
    assert "my photo.png" in notes[1] and "\u202e" not in notes[0]  # quoted with the override escaped
    assert notes[2].startswith("contents[1].uri: no such file 'photos/gone.png'")
    plan = build_plan(manifest, LocalStorage(photos / "out"))
    assert [j.content for j in plan.todo] == ["a", "b"]
    assert [(f.content, "gone.png" in f.reason) for f in plan.failed] == [("gone", True)]

    # The run's own results (and another pipeline output's) under the glob are never inputs.
    (photos / "out" / "results").mkdir(parents=True)
    make_image(40, 30, seed=1).save(photos / "out" / "results" / "a--s.png")
    (photos / "old").mkdir()
    (photos / "old" / ".nst-output").write_text("{}")
    make_image(40, 30, seed=1).save(photos / "old" / "x.png")
    assert [c.id for c in load_manifest(tmp_path / "m.yaml").contents] == ["a", "b", "gone"]


def test_a_glob_written_inside_an_old_output_is_taken_as_meant(tmp_path: Path) -> None:
    from tests.conftest import make_image

    results = tmp_path / "old" / "results"
    results.mkdir(parents=True)
    (tmp_path / "old" / ".nst-output").write_text("{}")
    make_image(40, 30, seed=1).save(results / "kept.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: again\ncontents: ['old/results/*.png']\nstyles: [s.png]\n")
    assert [c.id for c in load_manifest(tmp_path / "m.yaml").contents] == ["kept"]
    (tmp_path / "m.yaml").write_text("version: 1\nname: again\ncontents: ['**/*.png']\nstyles: [s.png]\n")
    assert [c.id for c in load_manifest(tmp_path / "m.yaml").contents] == ["s"]  # descended into it: left out
