"""Hostile and odd manifests: alias bombs, duplicate keys, huge values, trailing newlines, every
engine problem at once, out-of-range seeds, bad bucket names and settings that do nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.manifest import ManifestError, parse_manifest
from tasks.manifest_yaml import read_yaml

HEAD = "version: 1\nname: x\ncontents: [s3://b/c.jpg]\nstyles: [s3://b/s.jpg]\n"


def _problems(text: str, base_dir: Path) -> list[tuple[str, str]]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, base_dir=base_dir, source="m.yaml")
    return [(p.field, p.message) for p in info.value.problems]


def _by_field(text: str, base_dir: Path) -> dict[str, str]:
    return dict(_problems(text, base_dir))


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    text = billion_laughs(9) + HEAD + "engine:\n  scales: *a9\n"  # 9^9 = 387 million values
    problems = _problems(text, tmp_path)
    assert len(problems) == 1 and problems[0][0] == "(yaml)"
    message = problems[0][1]
    assert message.startswith("aliases expand the document to ") and "over the limit of" in message
    assert "82 alias(es) (*name) at line(s) 2, 2, 2, 2, 2, ..." in message  # a1's nine, first
    assert len(message) < 400


def test_modest_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    manifest = parse_manifest("""version: 1
name: x
contents: [s3://b/c.jpg]
styles: [s3://b/s.jpg, s3://b/s2.jpg]
engine: &fast {size: 64, iterations: 5}
pairs:
  - {content: c, style: s, engine: *fast}
  - {content: c, style: s2, engine: {<<: *fast, size: 32}}
""", base_dir=tmp_path, source="m.yaml")
    assert [(p.engine.size, p.engine.iterations) for p in manifest.pairs] == [(64, 5), (32, 5)]


def test_an_alias_inside_its_own_value_is_refused(tmp_path: Path) -> None:
    problems = _problems(HEAD + "engine: &loop {scales: [*loop]}\n", tmp_path)
    assert problems == [("(yaml)", "an alias refers to the value it is inside (anchored at line 5); "
                                   "a manifest cannot be recursive")]


def test_duplicate_keys_are_reported_with_lines_beside_other_problems(tmp_path: Path) -> None:
    problems = _problems("""version: 1
name: first
name: second
contents: [{id: "bad id", uri: s3://b/c.jpg}]
styles: [s3://b/s.jpg]
engine:
  size: 64
  iterations: 3
  size: 128
pairs: [{content: c, style: s, engine: {<<: {size: 32}, size: 48}}]
""", tmp_path)
    yaml_problems = [m for f, m in problems if f == "(yaml)"]
    assert yaml_problems == [
        "duplicate key 'name' at line 3 (first at line 2); YAML would keep only the last: write each key once",
        "duplicate key 'size' at line 9 (first at line 7); YAML would keep only the last: write each key once"]
    assert "contents[0].id" in dict(problems)  # found in the same report


def test_messages_quote_only_an_excerpt_of_a_huge_value(tmp_path: Path) -> None:
    huge_name = "n" * 100_000 + "!"
    huge_list = "[" + ", ".join(["1"] * 50_000) + "]"
    text = (f"version: 1\nname: '{huge_name}'\ncontents: [s3://b/c.jpg]\nstyles: [s3://b/s.jpg]\n"
            f"engine: {{optimizer: {huge_list}, sharp{'x' * 500}: 1}}\npairs: {huge_list}\n")
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, base_dir=tmp_path, source="m.yaml")
    problems = {p.field: p.message for p in info.value.problems}
    assert problems["name"].startswith("'nnnn") and problems["name"].endswith(
        "n!' is not a safe run name: use letters, digits, '.', '_' or '-', not starting with '.', "
        "at most 100 characters")
    assert problems["engine.optimizer"] == "expected text, got list [1, 1, 1, 1, ...]"
    assert f"engine.sharp{'x' * 32}..." in problems  # the key, cut to 40 characters
    assert all(len(field) < 80 and len(message) < 500 for field, message in problems.items())
    assert len(info.value.problems) == 50_003  # every entry of `pairs` is its own problem ...
    lines = str(info.value).splitlines()  # ... but the message lists the first hundred
    assert lines[0] == "m.yaml: 50003 problems" and lines[-1] == "  ... and 49903 more" and len(lines) == 102


@pytest.mark.parametrize("text,field,words", [
    (HEAD.replace("name: x", 'name: "run\\n"'), "name", "'run\\n' is not a safe run name"),
    (HEAD.replace("contents: [s3://b/c.jpg]", 'contents: [{id: "photo\\n", uri: s3://b/c.jpg}]'),
     "contents[0].id", "id 'photo\\n' is not safe as a file name"),
    (HEAD.replace("contents: [s3://b/c.jpg]", 'contents: ["s3://b/c\\n.jpg"]'), "contents[0].id",
     "is not safe as a file name"),
    (HEAD + "engine: {weights: \"random:3\\n\"}\n", "engine.weights", "write `random` or `random:SEED`"),
])
def test_names_and_ids_ending_in_a_newline_are_refused(tmp_path: Path, text: str, field: str, words: str) -> None:
    problems = _by_field(text, tmp_path)
    assert words in problems[field], problems


def test_every_engine_problem_is_reported_even_after_a_type_error(tmp_path: Path) -> None:
    problems = _by_field(HEAD + "engine: {size: big, iterations: -1, seed: 100000000000000000000000, "
                                "optimizer: sgd, colour: red, scales: nope, scale_iterations: [1, 2]}\n", tmp_path)
    assert set(problems) == {"engine.size", "engine.iterations", "engine.seed", "engine.optimizer",
                             "engine.colour", "engine.scales"}  # scale_iterations: not judged against bad scales
    assert problems["engine.size"] == "expected a whole number, got 'big'"
    assert problems["engine.iterations"] == "must be >= 0, got -1"
    assert problems["engine.optimizer"] == "must be one of ('lbfgs', 'adam'), got 'sgd'"


@pytest.mark.parametrize("engine,field,words", [
    ("{seed: 1.0e+23}", "engine.seed", "must be a whole number from 0 to 2**64 - 1, got 99999999999999991611392"),
    ("{seed: -1}", "engine.seed", "from 0 to 2**64 - 1"),
    ("{weights: 'random:18446744073709551616'}", "engine.weights", "seed from 0 to 2**64 - 1"),
    ("{iterations: 0}", "engine.iterations", "is 0: the run would only return its starting image"),
    ("{scales: [0.5, 1], scale_iterations: [0, 0]}", "engine.scale_iterations", "no scale has an iteration"),
    ("{content_weight: 0, style_weight: 0}", "engine.style_weight", "all 0: there is nothing to optimize"),
])
def test_out_of_range_and_pointless_settings_fail(tmp_path: Path, engine: str, field: str, words: str) -> None:
    problems = _by_field(HEAD + f"engine: {engine}\n", tmp_path)
    assert words in problems[field], problems


def test_the_largest_seeds_and_a_single_useful_iteration_pass(tmp_path: Path) -> None:
    engine = ("engine: {seed: 18446744073709551615, weights: 'random:18446744073709551615', "
              "scales: [0.5, 1], scale_iterations: [0, 1]}\n")
    manifest = parse_manifest(HEAD + engine, base_dir=tmp_path, source="m.yaml")
    assert manifest.engine.seed == 2**64 - 1 and manifest.engine.scale_iterations == (0, 1)


@pytest.mark.parametrize("line,field", [
    ("output: s3://Bad_Bucket!/x", "output"),
    ("cache: s3://under_score/grams", "cache"),
    ("engine: {weights: s3://UPPER/vgg19.pth}", "engine.weights"),
    ("engine: {weights: s3://my..bucket/vgg19.pth}", "engine.weights"),
    ("output: s3://192.168.1.1/out", "output"),
    ("output: s3://-dash/out", "output"),
])
def test_invalid_bucket_names_are_refused(tmp_path: Path, line: str, field: str) -> None:
    problems = _by_field(HEAD + line + "\n", tmp_path)
    assert problems[field].startswith("bucket name ") and "is not valid on S3" in problems[field], problems


def test_invalid_bucket_in_an_image_uri_is_refused_and_good_names_pass(tmp_path: Path) -> None:
    problems = _by_field(HEAD.replace("s3://b/c.jpg", "s3://Photos/c.jpg"), tmp_path)
    assert problems["contents[0]"] == ("bucket name 'Photos' is not valid on S3: use lowercase letters, digits, "
                                       "'.' and '-', starting and ending with a letter or digit, at most 63 characters")
    manifest = parse_manifest(HEAD + "output: s3://my-bucket.v2/out\ncache: s3://a1/g\n", base_dir=tmp_path,
                              source="m.yaml")
    assert manifest.output == "s3://my-bucket.v2/out"


def test_read_yaml_returns_data_and_no_problems_for_plain_documents() -> None:
    assert read_yaml("a: 1\nb: [x, y]\n") == ({"a": 1, "b": ["x", "y"]}, [])
    assert read_yaml("") == (None, [])
