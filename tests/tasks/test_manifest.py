from pathlib import Path

import pytest

from tasks.manifest import ManifestError, load_manifest, parse_manifest


def _files(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")


def test_valid_manifest_resolves_globs_blends_and_overrides(tmp_path: Path) -> None:
    _files(tmp_path, "photos/b.jpg", "photos/a.jpg", "louvre.png", "art/x.jpg", "art/y.jpg")
    path = tmp_path / "m.yaml"
    path.write_text("""
version: 1
name: monet-week
contents:
  - {id: louvre, uri: louvre.png}
  - photos/*.jpg
styles:
  - {id: x, uri: art/x.jpg}
  - {id: mix, uri: [art/x.jpg, art/y.jpg], blend: [0.7, 0.3]}
pairs:
  - {content: a, style: mix, engine: {iterations: 7}}
  - {content: louvre, style: x}
engine: {size: 64, style_weight: 1e3, weights: random}
""")
    manifest = load_manifest(path)
    assert [c.id for c in manifest.contents] == ["louvre", "a", "b"]  # globs sorted
    assert manifest.contents[1].uris == (str(tmp_path / "photos/a.jpg"),)
    assert manifest.styles[1].blend == (0.7, 0.3) and len(manifest.styles[1].uris) == 2
    assert manifest.output == str(tmp_path / "out" / "monet-week") and manifest.cache is None
    first, second = manifest.pairs
    assert (first.content, first.style, first.engine.iterations, first.engine.size) == ("a", "mix", 7, 64)
    assert second.engine.iterations == 500 and manifest.engine.style_weight == 1000.0


def test_pairs_all_is_content_major() -> None:
    manifest = parse_manifest("""
version: 1
name: r
contents: [s3://b/c1.jpg, s3://b/c2.jpg]
styles: [s3://b/s1.jpg, s3://b/s2.jpg]
""", base_dir=Path("/"), source="m.yaml")
    assert [(p.content, p.style) for p in manifest.pairs] == [("c1", "s1"), ("c1", "s2"), ("c2", "s1"), ("c2", "s2")]


def test_every_problem_is_reported_at_once_with_its_field(tmp_path: Path) -> None:
    _files(tmp_path, "a.jpg", "b.jpg")
    with pytest.raises(ManifestError) as info:
        parse_manifest("""
version: 1
name: bad
colour: blue
contents:
  - {id: a, uri: a.jpg}
  - {id: a, uri: b.jpg}
styles:
  - {id: s, uri: missing.jpg}
  - {id: t, uri: 3}
pairs:
  - {content: a, style: nope}
engine: {sharpness: 3, size: big}
""", base_dir=tmp_path, source="m.yaml")
    problems = {p.field: p.message for p in info.value.problems}
    assert "unknown key" in problems["colour"]
    assert "duplicate id 'a'" in problems["contents[1].id"]
    assert "no such file 'missing.jpg'" in problems["styles[0].uri"]
    assert "got a number 3" in problems["styles[1].uri"]
    assert "unknown style id 'nope'" in problems["pairs[0].style"]
    assert "unknown setting" in problems["engine.sharpness"]
    assert "whole number" in problems["engine.size"]
    assert str(info.value).startswith("m.yaml: 7 problem(s)")


@pytest.mark.parametrize("text,field,words", [
    ("version: 1\nname: x\ncontents: [a\n", "(yaml)", "not valid YAML at line"),
    ("name: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "missing"),
    ("version: 2\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [s3://a/c.jpg]\n", "version", "got 2"),
    ("version: 1\nname: x\ncontents: [nothing/*.jpg]\nstyles: [s3://a/c.jpg]\n", "contents[0]", "matches no file"),
    ("version: 1\nname: x\ncontents: 5\nstyles: [s3://a/c.jpg]\n", "contents", "non-empty list"),
    ("version: 1\nname: x\ncontents: [s3://a/b.jpg]\nstyles: [{id: m, uri: [s3://a/c.jpg], blend: [1, 2]}]\n",
     "styles[0].blend", "needs 1 numbers"),
    ("version: 1\nname: x\ncontents: [{id: a--b, uri: s3://a/b.jpg}]\nstyles: [s3://a/c.jpg]\n",
     "contents[0].id", "no '--'"),
])
def test_single_problems(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, base_dir=tmp_path, source="m.yaml")
    assert any(p.field == field and words in p.message for p in info.value.problems), info.value


def test_ten_thousand_pairs_expand_quickly() -> None:
    ids = "\n".join(f"  - s3://bucket/c{i}.jpg" for i in range(100))
    styles = "\n".join(f"  - s3://bucket/s{i}.jpg" for i in range(100))
    manifest = parse_manifest(f"version: 1\nname: big\ncontents:\n{ids}\nstyles:\n{styles}\n",
                              base_dir=Path("/"), source="m.yaml")
    assert len(manifest.pairs) == 10_000 and manifest.pairs[-1].content == "c99"
