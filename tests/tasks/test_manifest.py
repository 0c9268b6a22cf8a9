"""tasks.manifest: parsing a v1 manifest into records, and reporting every problem at once."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from tasks.manifest import ManifestError, Problem, load_manifest, parse_manifest, with_engine_changes


def _files(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")


def _problems(text: str, base_dir: Path) -> dict[str, str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, base_dir=base_dir, source="m.yaml")
    found: dict[str, str] = {}
    for p in info.value.problems:
        found[p.field] = (found[p.field] + " | " + p.message) if p.field in found else p.message
    return found


def test_valid_manifest_globs_blends_relative_paths_and_overrides(tmp_path: Path) -> None:
    _files(tmp_path, "photos/b.jpg", "photos/a.jpg", "louvre.png", "art/x.jpg", "art/y.jpg", "vgg.pth")
    path = tmp_path / "m.yaml"
    path.write_text("""
version: 1
name: monet-week
cache: s3://bucket/grams
contents:
  - {id: louvre, uri: louvre.png}
  - photos/*.jpg
styles:
  - {id: x, uri: art/x.jpg}
  - {id: mix, uri: [art/x.jpg, art/y.jpg], blend: [0.7, 0.3]}
  - {id: even, uri: [art/x.jpg, s3://art/poppies.jpg]}
  - s3://art/poppies.jpg
pairs:
  - {content: a, style: mix, engine: {iterations: 7, weights: random:3}}
  - {content: louvre, style: x}
  - {content: b, style: poppies, engine: {iterations: 7, weights: random:3}}
engine: {size: 64, style_weight: 1e3, weights: vgg.pth}
""")
    manifest = load_manifest(path)
    assert manifest.source == str(path) and manifest.name == "monet-week"
    assert [c.id for c in manifest.contents] == ["louvre", "a", "b"]  # glob matches sorted
    assert manifest.contents[0].uris == (str(tmp_path / "louvre.png"),)  # relative -> manifest folder
    assert manifest.contents[1].uris == (str(tmp_path / "photos" / "a.jpg"),)
    assert manifest.contents[1].blend == (1.0,)
    mix, even = manifest.styles[1], manifest.styles[2]
    assert mix.uris == (str(tmp_path / "art/x.jpg"), str(tmp_path / "art/y.jpg")) and mix.blend == (0.7, 0.3)
    assert even.uris == (str(tmp_path / "art/x.jpg"), "s3://art/poppies.jpg") and even.blend == (1.0, 1.0)
    assert manifest.styles[3].id == "poppies" and manifest.styles[3].uris == ("s3://art/poppies.jpg",)
    assert manifest.output == str(tmp_path / "out" / "monet-week")  # the default
    assert manifest.cache == "s3://bucket/grams"
    assert manifest.engine.size == 64 and manifest.engine.style_weight == 1000.0
    assert manifest.engine.weights == str(tmp_path / "vgg.pth")  # resolved against the manifest folder
    first, second, third = manifest.pairs
    assert (first.content, first.style) == ("a", "mix")
    assert (first.engine.iterations, first.engine.size, first.engine.weights) == (7, 64, "random:3")
    assert (second.content, second.style, second.engine) == ("louvre", "x", manifest.engine)
    assert second.engine.iterations == 500
    assert third.engine == first.engine


def test_pairs_all_is_every_content_by_style_content_major(tmp_path: Path) -> None:
    manifest = parse_manifest("""
version: 1
name: r
output: results/here
cache: ~/grams
contents: [s3://b/c1.jpg, s3://b/c2.jpg]
styles: [s3://b/s1.jpg, s3://b/s2.jpg, s3://b/s3.jpg]
engine: {iterations: 9}
""", base_dir=tmp_path, source="m.yaml")
    assert [(p.content, p.style) for p in manifest.pairs] == [
        ("c1", "s1"), ("c1", "s2"), ("c1", "s3"), ("c2", "s1"), ("c2", "s2"), ("c2", "s3")]
    assert all(p.engine is manifest.engine and p.engine.iterations == 9 for p in manifest.pairs)
    assert manifest.output == str(tmp_path / "results" / "here")
    assert manifest.cache == str(Path("~/grams").expanduser())


def test_many_problems_are_reported_at_once_each_with_its_field(tmp_path: Path) -> None:
    _files(tmp_path, "a.jpg", "b.jpg", "s.jpg")
    problems = _problems("""
version: 1
name: bad
colour: blue
contents:
  - {id: a, uri: a.jpg}
  - {id: a, uri: b.jpg}
  - {id: c, uri: 3}
styles:
  - {id: s, uri: s.jpg}
  - {id: m, uri: missing.jpg}
pairs:
  - {content: a, style: nope}
  - {content: a, style: s, engine: {iterations: -1}}
engine: {sharpness: 3, size: 64}
""", tmp_path)
    assert set(problems) == {"colour", "contents[1].id", "contents[2].uri", "styles[1].uri", "pairs[0].style",
                             "pairs[1].engine.iterations", "engine.sharpness"}
    assert problems["colour"].startswith("unknown key; allowed: version, name, output")
    assert "duplicate id 'a'" in problems["contents[1].id"] and "contents[0]" in problems["contents[1].id"]
    assert "got a number 3" in problems["contents[2].uri"]
    assert problems["styles[1].uri"] == f"no such file 'missing.jpg' (looked in {tmp_path})"
    assert problems["pairs[0].style"] == "unknown style id 'nope'; known: m, s"
    assert ">= 0" in problems["pairs[1].engine.iterations"]
    assert "unknown setting" in problems["engine.sharpness"] and "iterations" in problems["engine.sharpness"]


def test_error_text_lists_the_file_then_one_line_per_problem(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest("version: 1\nname: '[x]'\ncontents: 5\nstyles: []\n", base_dir=tmp_path, source="m.yaml")
    error = info.value
    assert error.source == "m.yaml" and [p.field for p in error.problems] == ["name", "contents", "styles"]
    lines = str(error).splitlines()
    assert lines[0] == "m.yaml: 3 problems"
    assert lines[2] == "  contents: expected a list of images (paths, globs or {id, uri}), got a number 5"
    assert str(error.problems[2]) == "styles: is empty; list at least one image"
    copy = pickle.loads(pickle.dumps(error))  # Prefect may ship it between processes
    assert copy.problems == error.problems and str(copy) == str(error)


@pytest.mark.parametrize("text,field,words", [
    ("version: 1\nname: x\ncontents: [a\n", "(yaml)", "not valid YAML at line 4, column 1"),
    ("version: 1\nname: 'x\n", "(yaml)", "line 3"),
    ("[1, 2]\n", "(top level)", "got a list of 2 items"),
    ("", "(top level)", "empty"),
    ("name: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "missing; add `version: 1`"),
    ("version: 2\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "got a number 2"),
    ("version: '1'\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "got text '1'"),
    ("version: true\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "true/false"),
    ("version: 1\nname: x\ncontents: [nothing/*.jpg]\nstyles: [s3://a/c.jpg]\n", "contents[0]",
     "the glob 'nothing/*.jpg' matches no file"),
    ("version: 1\nname: [1]\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "name",
     "expected text, got a list [1]"),
    ("version: 1\nname: .hidden\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "name", "not starting with '.'"),
    ("version: 1\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "name", "missing"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\n", "styles", "missing"),
    ("version: 1\nname: x\noutput: 5\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "output",
     "got a number 5"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\ncache: gs://x\n", "cache",
     "only local folders and s3://"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [{id: m, uri: [s3://a/c.jpg], blend: [1, 2]}]\n",
     "styles[0].blend", "needs 1 weight(s), one per uri, got 2"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [{id: m, uri: [s3://a/c.jpg, s3://a/d.jpg], "
     "blend: [0, 0]}]\n", "styles[0].blend", "all 0"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [{id: m, uri: [s3://a/c.jpg, s3://a/d.jpg], "
     "blend: [1, -1]}]\n", "styles[0].blend", ">= 0"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [{id: m, uri: s3://a/c.jpg, blend: [1]}]\n",
     "styles[0].blend", "need a list uri"),
    ("version: 1\nname: x\ncontents: [{id: c, uri: [s3://a/b.jpg]}]\nstyles: [s3://a/c.jpg]\n",
     "contents[0].uri", "only allowed in styles"),
    ("version: 1\nname: x\ncontents: [{id: c, uri: s3://a/b.jpg, blend: [1]}]\nstyles: [s3://a/c.jpg]\n",
     "contents[0].blend", "unknown key (blend is for styles only)"),
    ("version: 1\nname: x\ncontents: [{id: a--b, uri: s3://a/b.jpg}]\nstyles: [s3://a/c.jpg]\n",
     "contents[0].id", "no '--'"),
    ("version: 1\nname: x\ncontents: [{id: 2024, uri: s3://a/b.jpg}]\nstyles: [s3://a/c.jpg]\n",
     "contents[0].id", "quote it"),
    ("version: 1\nname: x\ncontents: [{uri: s3://a/b.jpg}]\nstyles: [s3://a/c.jpg]\n", "contents[0].id", "missing"),
    ("version: 1\nname: x\ncontents: [s3://a/my photo.jpg]\nstyles: [s3://a/c.jpg]\n", "contents[0].id",
     "'my photo' is not safe as a file name"),
    ("version: 1\nname: x\ncontents: [s3://bucket]\nstyles: [s3://a/c.jpg]\n", "contents[0]", "s3://bucket/key"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\npairs: some\n", "pairs",
     "expected `all` or a list"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\npairs: []\n", "pairs", "empty"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n"
     "pairs: [{content: b, style: c, colour: red}]\n", "pairs[0].colour", "unknown key; allowed: content, style"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n"
     "pairs: [{content: b, style: c}, {content: b, style: c}]\n", "pairs[1]", "duplicate pair b x c (also pairs[0])"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\npairs: [{content: [b], style: c}]\n",
     "pairs[0].content", "expected a content id (text), got a list"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\nengine: [1]\n", "engine",
     "must be a mapping"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\nengine: {size: .inf}\n",
     "engine.size", "expected a finite number"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\nengine: {weights: nets/vgg.pth}\n",
     "engine.weights", "no such weights file 'nets/vgg.pth'"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\nengine: {weights: 'random:x'}\n",
     "engine.weights", "random:SEED"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n"
     "pairs: [{content: b, style: c, engine: {weights: no.pth}}]\n", "pairs[0].engine.weights", "no such weights file"),
])
def test_single_problems(tmp_path: Path, text: str, field: str, words: str) -> None:
    problems = _problems(text, tmp_path)
    assert field in problems, problems
    assert words in problems[field], problems[field]


def test_local_paths_globs_and_folders(tmp_path: Path) -> None:
    base = tmp_path / "odd [folder]"  # glob characters in the manifest's own folder are not a glob
    _files(base, "c/one.jpg", "c/deep/two.jpg", "s.jpg", "several/p.jpg", "several/q.jpg")
    manifest = parse_manifest(f"""
version: 1
name: x
output: {tmp_path / 'abs-out'}
contents: [c/**/*.jpg]
styles: [{{id: s, uri: s.*}}]
""", base_dir=base, source="m.yaml")
    assert [(c.id, c.uris) for c in manifest.contents] == [
        ("two", (str(base / "c/deep/two.jpg"),)), ("one", (str(base / "c/one.jpg"),))]
    assert manifest.styles[0].uris == (str(base / "s.jpg"),)  # a glob matching one file is fine with an id
    assert manifest.output == str(tmp_path / "abs-out")
    problems = _problems("""
version: 1
name: x
output: s.jpg
contents: [c, {id: p, uri: several/*.jpg}]
styles: [{id: m, uri: [s.jpg, several/*.jpg, gone.jpg]}]
""", base)
    assert "is a file" in problems["output"]
    assert "is a folder" in problems["contents[0]"] and "'c/*.jpg'" in problems["contents[0]"]
    assert "matched 2 files" in problems["contents[1].uri"]
    assert "matched 2 files" in problems["styles[0].uri[1]"]
    assert problems["styles[0].uri[2]"] == f"no such file 'gone.jpg' (looked in {base})"


def test_bare_glob_duplicates_and_broken_entries_do_not_cascade(tmp_path: Path) -> None:
    _files(tmp_path, "a/x.jpg", "b/x.jpg", "s.jpg")
    problems = _problems("""
version: 1
name: x
contents: [a/*.jpg, b/*.jpg, {id: broken, uri: gone.jpg}]
styles: [s.jpg]
pairs:
  - {content: broken, style: s}
  - {content: x, style: s}
""", tmp_path)
    assert set(problems) == {"contents[1].id", "contents[2].uri"}  # no "unknown content id 'broken'"
    assert "duplicate id 'x' from " + str(tmp_path / "b/x.jpg") in problems["contents[1].id"]
    assert "also at contents[0]" in problems["contents[1].id"]


def test_same_id_in_contents_and_styles_and_null_values_mean_defaults(tmp_path: Path) -> None:
    _files(tmp_path, "same.jpg")
    manifest = parse_manifest("version: 1\nname: x\ncontents: [same.jpg]\nstyles: [same.jpg]\n"
                              "output:\ncache:\npairs:\nengine:\n", base_dir=tmp_path, source="m.yaml")
    assert [(p.content, p.style) for p in manifest.pairs] == [("same", "same")]
    assert manifest.cache is None and manifest.output == str(tmp_path / "out" / "x")
    assert manifest.engine.iterations == 500


def test_load_manifest_reports_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert info.value.problems[0].field == "(file)" and "no such file" in info.value.problems[0].message
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "bin.yaml")
    assert "not UTF-8" in info.value.problems[0].message
    with pytest.raises(ManifestError) as info:
        load_manifest("gs://bucket/m.yaml")  # s3:// manifests are read (tests/s3/test_s3_globs.py)
    assert "only local files and s3:// URIs" in info.value.problems[0].message
    (tmp_path / "bad.yaml").write_text("version: 1\nname: x\n  bad: indent\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "bad.yaml")
    assert info.value.source == str(tmp_path / "bad.yaml")
    assert info.value.problems == [Problem("(yaml)", info.value.problems[0].message)]
    assert "line 3" in info.value.problems[0].message


def test_one_hundred_by_one_hundred_expands_to_ten_thousand_pairs_sharing_one_config(tmp_path: Path) -> None:
    folder = tmp_path / "img"
    _files(folder, *(f"c{i:03d}.jpg" for i in range(100)), *(f"s{i:03d}.jpg" for i in range(100)))
    contents = "\n".join(f"  - {{id: c{i}, uri: img/c{i:03d}.jpg}}" for i in range(100))
    text = f"version: 1\nname: big\ncontents:\n{contents}\nstyles: [img/s*.jpg]\nengine: {{size: 128}}\n"
    manifest = parse_manifest(text, base_dir=tmp_path, source="m.yaml")
    # The work bound, without a timing assertion: every pair shares the one top-level config.
    assert len(manifest.pairs) == 10_000 and len({id(p.engine) for p in manifest.pairs}) == 1
    assert (manifest.pairs[0].content, manifest.pairs[0].style) == ("c0", "s000")
    assert (manifest.pairs[101].content, manifest.pairs[101].style) == ("c1", "s001")
    assert manifest.pairs[-1].content == "c99" and manifest.pairs[-1].engine.size == 128


def test_explicit_pairs_with_repeated_overrides_share_one_config_each(tmp_path: Path) -> None:
    contents = "\n".join(f"  - s3://b/c{i}.jpg" for i in range(100))
    styles = "\n".join(f"  - s3://b/s{i}.jpg" for i in range(100))
    pairs = "\n".join(f"  - {{content: c{i}, style: s{j}, engine: {{iterations: {j % 3 + 1}}}}}"
                      for i in range(100) for j in range(100))
    text = f"version: 1\nname: big\ncontents:\n{contents}\nstyles:\n{styles}\npairs:\n{pairs}\n"
    manifest = parse_manifest(text, base_dir=tmp_path, source="m.yaml")
    # No timing assertion (it flaked on a loaded machine); the work bound is the memo below:
    # 10,000 overrides build 3 EngineConfigs, not 10,000.
    assert len(manifest.pairs) == 10_000
    assert [p.engine.iterations for p in manifest.pairs[:4]] == [1, 2, 3, 1]
    assert len({id(p.engine) for p in manifest.pairs}) == 3  # one config per distinct override


def test_with_engine_changes_changes_every_pair(tmp_path: Path) -> None:
    manifest = parse_manifest("version: 1\nname: x\ncontents: [s3://b/c.jpg]\nstyles: [s3://b/s.jpg, s3://b/t.jpg]\n"
                              "pairs: [{content: c, style: s}, {content: c, style: t, engine: {size: 64}}]\n",
                              base_dir=tmp_path, source="m.yaml")
    changed = with_engine_changes(manifest, weights="random:1")
    assert changed.engine.weights == "random:1"
    assert [(p.engine.weights, p.engine.size) for p in changed.pairs] == [("random:1", 512), ("random:1", 64)]


def test_importing_the_module_pulls_in_no_prefect_torch_or_boto3() -> None:
    import subprocess

    code = ("import sys, tasks.manifest; "
            "print(sorted(m for m in ('prefect', 'torch', 'boto3') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
