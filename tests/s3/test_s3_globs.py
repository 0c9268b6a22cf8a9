"""Scheduled bulk jobs on S3 (a real SeaweedFS server): a manifest stored on S3 whose globs span
two prefixes, reruns that touch only what changed, glob validation, paginated listings and
`//` in output prefixes."""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from flows.stylize_manifest import run_manifest
from nst_cli.main import main
from tasks.manifest import ManifestError, load_manifest
from tasks.options import RunOptions
from tasks.stores import glob_objects, open_storage
from tests.conftest import make_image

ENGINE = "engine: {size: 32, iterations: 2, weights: 'random:3'}"


def _png(seed: int, kind: str = "content", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    make_image(*size, seed=seed, kind=kind).save(buffer, "PNG")
    return buffer.getvalue()


def _put(server, bucket: str, key: str, body: bytes) -> None:
    server.client().put_object(Bucket=bucket, Key=key, Body=body)


def nightly_job(server, bucket: str, photos: int = 3) -> str:
    """Photos under jobs/incoming/ (beside things that are not photos), styles under art/, and
    the manifest at jobs/nightly.yaml with paths relative to its own prefix."""
    for i in range(photos):
        _put(server, bucket, f"jobs/incoming/p{i}.png", _png(i))
    _put(server, bucket, "jobs/incoming/_SUCCESS", b"")
    _put(server, bucket, "jobs/incoming/notes.txt", b"not a photo")
    _put(server, bucket, "jobs/incoming/older/p9.png", _png(9))  # `*` stays in one folder
    for j in range(2):
        _put(server, bucket, f"art/a{j}.png", _png(100 + j, "style", (36, 36)))
    text = "\n".join(["version: 1", "name: nightly", "output: gallery", "cache: ../cache",
                      "contents: [incoming/*]", f"styles: ['s3://{bucket}/art/*.png']", ENGINE]) + "\n"
    _put(server, bucket, "jobs/nightly.yaml", text.encode())
    return f"s3://{bucket}/jobs/nightly.yaml"


def _gets(proxy, part: str) -> set[str]:
    """Object paths the pipeline fetched (GET, not listings) whose path contains `part`."""
    return {s.path.split("?")[0] for s in proxy.seen if s.method == "GET" and part in s.path.split("?")[0]}


def test_manifest_on_s3_with_globs_runs_then_reruns_only_new_and_changed_photos(
        prefect_server, s3_env, via_proxy, bucket, capsys):
    server, proxy = s3_env, via_proxy
    uri = nightly_job(server, bucket)

    assert main(["validate", uri]) == 0
    assert f"{uri}: ok (3 contents, 2 styles, 6 pairs)" in capsys.readouterr().out
    manifest = load_manifest(uri)
    assert [c.uris[0] for c in manifest.contents] == [f"s3://{bucket}/jobs/incoming/p{i}.png" for i in range(3)]
    assert manifest.output == f"s3://{bucket}/jobs/gallery" and manifest.cache == f"s3://{bucket}/cache"

    state, report = run_manifest(uri, RunOptions(batch_size=4))
    assert state.is_completed(), state.message
    assert report["counts"] == {"done": 6, "skipped": 0, "failed": 0}
    first = {k: o["ETag"] for k, o in _objects(server, bucket, "jobs/gallery/results/").items()}
    assert len(first) == 12

    # Two photos land in the prefix: the rerun does exactly their pairs and reads no old photo.
    for i in (3, 4):
        _put(server, bucket, f"jobs/incoming/p{i}.png", _png(i))
    proxy.clear()
    state, report = run_manifest(uri, RunOptions(batch_size=4))
    assert report["counts"] == {"done": 4, "skipped": 6, "failed": 0}
    assert {(p["content"], p["style"]) for p in report["pairs"] if p["status"] == "done"} == \
        {(f"p{i}", f"a{j}") for i in (3, 4) for j in range(2)}
    assert _gets(proxy, "/jobs/incoming/") == {f"/{bucket}/jobs/incoming/p{i}.png" for i in (3, 4)}
    # The old results' provenance was not read either: the plan index knew it (the new
    # results' provenance is read once after the run, to record it).
    assert _gets(proxy, "/jobs/gallery/results/") == {
        f"/{bucket}/jobs/gallery/results/p{i}--a{j}.json" for i in (3, 4) for j in range(2)}
    after = {k: o["ETag"] for k, o in _objects(server, bucket, "jobs/gallery/results/").items()}
    assert {k: v for k, v in after.items() if k in first} == first  # nothing old rewritten

    # New bytes under the same key: that photo's pairs are redone, with the new hash recorded.
    replaced = _png(50, size=(40, 30))
    _put(server, bucket, "jobs/incoming/p1.png", replaced)
    proxy.clear()
    state, report = run_manifest(uri, RunOptions(batch_size=4))
    assert report["counts"] == {"done": 2, "skipped": 8, "failed": 0}
    assert {(p["content"], p["style"]) for p in report["pairs"] if p["status"] == "done"} == {("p1", "a0"), ("p1", "a1")}
    assert _gets(proxy, "/jobs/incoming/") == {f"/{bucket}/jobs/incoming/p1.png"}
    record = json.loads(open_storage(f"s3://{bucket}/jobs/gallery").read("results/p1--a0.json"))
    assert record["inputs"]["content"]["sha256"] == hashlib.sha256(replaced).hexdigest()
    head = server.client().head_object(Bucket=bucket, Key="jobs/incoming/p1.png")
    assert record["inputs"]["content"]["version"] == head["ETag"].strip('"')
    assert record["inputs"]["content"]["bytes"] == len(replaced)

    # Nothing changed: nothing is read, nothing is done.
    proxy.clear()
    state, report = run_manifest(uri, RunOptions(batch_size=4))
    assert report["counts"] == {"done": 0, "skipped": 10, "failed": 0}
    assert _gets(proxy, "/jobs/incoming/") == set() and _gets(proxy, "/results/") == set()


def test_empty_glob_is_a_validation_error_naming_it(s3_env, bucket, capsys):
    server = s3_env
    _put(server, bucket, "in/p0.png", _png(0))
    _put(server, bucket, "in/readme.txt", b"text")
    text = (f"version: 1\nname: e\ncontents: ['s3://{bucket}/in/*.jpg', 's3://{bucket}/in/*.txt']\n"
            f"styles: [../nothing/*.png]\n{ENGINE}\n")
    _put(server, bucket, "jobs/m.yaml", text.encode())
    uri = f"s3://{bucket}/jobs/m.yaml"

    assert main(["validate", uri]) == 1
    err = capsys.readouterr().err
    assert f"contents[0]: the glob 's3://{bucket}/in/*.jpg' matches no image" in err
    assert f"contents[1]: the glob 's3://{bucket}/in/*.txt' matches no image (1 matched, none an image)" in err
    assert f"styles[0]: the glob '../nothing/*.png (s3://{bucket}/nothing/*.png)' matches no image" in err
    with pytest.raises(ManifestError) as info:
        load_manifest(uri)
    assert [p.field for p in info.value.problems] == ["contents[0]", "contents[1]", "styles[0]"]


def test_same_stem_under_two_prefixes_is_a_duplicate_id(s3_env, bucket):
    for prefix in ("x", "y"):
        _put(s3_env, bucket, f"{prefix}/p.png", _png(0))
    _put(s3_env, bucket, "art/a.png", _png(1, "style"))
    _put(s3_env, bucket, "m.yaml", f"version: 1\nname: d\ncontents: [x/*.png, y/*.png]\nstyles: [art/*.png]\n".encode())
    with pytest.raises(ManifestError) as info:
        load_manifest(f"s3://{bucket}/m.yaml")
    assert [str(p) for p in info.value.problems] == [
        f"contents[1].id: duplicate id 'p' from s3://{bucket}/y/p.png (also at contents[0]); "
        "ids must be unique within contents, ignoring case"]


def test_missing_manifest_object_names_it(s3_env, bucket):
    with pytest.raises(ManifestError) as info:
        load_manifest(f"s3://{bucket}/nope.yaml")
    assert info.value.source == f"s3://{bucket}/nope.yaml"
    assert "cannot read the manifest: NoSuchKey" in info.value.problems[0].message


def test_listing_and_globs_page_past_1000_keys_and_recurse_with_double_star(s3_env, bucket):
    client = s3_env.client()
    keys = [f"many/{i:04d}.png" for i in range(1005)] + ["many/deep/er/x.png"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))
    listed = open_storage(f"s3://{bucket}/many").list_objects()
    assert len(listed) == 1006 and listed[0].key == "0000.png" and listed[0].size == 1
    assert len(listed[0].version) == 32  # the ETag
    assert len(glob_objects(f"s3://{bucket}/many/*.png")) == 1005
    assert len(glob_objects(f"s3://{bucket}/many/**/*.png")) == 1006
    assert [u for u, _ in glob_objects(f"s3://{bucket}/many/**/x.png")] == [f"s3://{bucket}/many/deep/er/x.png"]


def test_double_slashes_in_the_output_prefix_are_normalised(s3_env, bucket):
    storage = open_storage(f"s3://{bucket}/a//b/")
    assert storage.uri == f"s3://{bucket}/a/b"
    storage.write("results//x.json", b"{}")
    assert [o.key for o in storage.list_objects("results/")] == ["results/x.json"]
    assert list(_objects(s3_env, bucket, "")) == ["a/b/results/x.json"]


def test_rerun_into_a_prefix_written_with_double_slashes_skips_what_it_wrote(prefect_server, s3_env, bucket):
    _put(s3_env, bucket, "in/p.png", _png(0))
    _put(s3_env, bucket, "in/s.png", _png(1, "style"))
    text = (f"version: 1\nname: slashes\noutput: 's3://{bucket}/a//b/'\ncache: s3://{bucket}/cache\n"
            f"contents: [in/p.png]\nstyles: [in/s.png]\n{ENGINE}\n")
    _put(s3_env, bucket, "m.yaml", text.encode())
    state, report = run_manifest(f"s3://{bucket}/m.yaml")
    assert report["counts"]["done"] == 1 and report["output"] == f"s3://{bucket}/a/b"
    state, report = run_manifest(f"s3://{bucket}/m.yaml")
    assert report["counts"] == {"done": 0, "skipped": 1, "failed": 0}
    assert "results/p--s.png" in _objects(s3_env, bucket, "a/b/")
    assert not [key for key in _objects(s3_env, bucket, "") if "//" in key]


def _objects(server, bucket: str, prefix: str) -> dict[str, dict]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"][len(prefix):] if prefix else item["Key"]: item for page in pages
            for item in page.get("Contents", [])}


def test_the_nightly_example_manifest_and_deployment_work_against_s3(s3_env, capsys, weights_file):
    import yaml

    from deployments.manifest_deployment import EXAMPLE_CRON, REPO_ROOT, flow_parameters

    client = s3_env.client()
    for name in ("photos", "gallery"):
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
    for key, body in (("incoming/IMG_0001.jpg", _png(1)), ("incoming/IMG_0002.png", _png(2)),
                      ("incoming/IMG_0002.json", b"{}"), ("styles/starry.jpg", _png(3, "style")),
                      ("models/vgg19-dcbb9e9d.pth", weights_file.read_bytes())):  # validate checks it exists
        client.put_object(Bucket="photos", Key=key, Body=body)
    client.put_object(Bucket="photos", Key="jobs/nightly.yaml",
                      Body=(REPO_ROOT / "deployments" / "nightly-s3.manifest.yaml").read_bytes())
    uri = "s3://photos/jobs/nightly.yaml"

    assert main(["validate", uri]) == 0
    assert "ok (2 contents, 1 styles, 2 pairs)" in capsys.readouterr().out
    assert main(["run", uri, "--dry-run", "--weights", "random"]) == 0
    assert "todo: 2, skipped: 0" in capsys.readouterr().out
    (entry,) = yaml.safe_load((REPO_ROOT / "deployments" / "nightly-s3.yaml").read_text())["deployments"]
    assert entry["parameters"]["manifest_uri"] == uri and entry["schedules"][0]["cron"] == EXAMPLE_CRON
    assert RunOptions.from_parameters(entry["parameters"]["options"]).gpu_limit == "nst-gpu"
    assert flow_parameters(uri, RunOptions())["manifest_uri"] == uri  # `nst deploy s3://...` keeps the URI
