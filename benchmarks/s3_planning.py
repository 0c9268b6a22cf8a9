"""What planning a nightly run costs on S3 when little changed: 2,000 finished results, 10 new photos.

    .venv/bin/python -m benchmarks.s3_planning                    # ~3 min on 2 cores
    .venv/bin/python -m benchmarks.s3_planning --photos 40 --styles 2 --new 4   # smoke check

On a real SeaweedFS (`weed mini`, tests/s3support), with tiny PNGs:

1. uploads `--photos` photos to incoming/ and `--styles` styles to art/, and writes a manifest
   for them twice: on S3 with globs (`incoming/*.png`), and as a local file listing every object
   (the only way the planner before this change could take them: no S3 globs, no S3 manifests);
2. makes photos x styles finished results the way a run leaves them, without the engine: this
   code plans the run, then writes each pair's image and provenance (with the planned
   fingerprint; thumbnails are left out, planning never lists them) and records them as the flow
   does after its batches (`record_results`);
3. uploads `--new` photos, then times `load_manifest` + `build_plan` in a fresh process for each
   row, counting at the client (botocore `after-call` events on the pipeline's shared client)
   the requests by operation and the bytes of their response bodies. The plan index is put
   back as it was after each row, so every row plans the same state.

"before" runs the planner of `--before-ref` (default: the planner before the plan index),
extracted with `git archive`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BEFORE_REF = "30d1438"  # the planner before the plan index: it reads every input


def measure(manifest_uri: str) -> dict[str, Any]:
    """Plan once in this process and report what it cost. Works with the old and the new code."""
    import nst_engine  # noqa: F401 - torch is imported before the clock starts
    from tasks.manifest import load_manifest
    from tasks.plan import build_plan
    from tasks.stores import open_storage
    from tasks.stores.s3 import s3_client

    calls: dict[str, int] = {}
    body: dict[str, int] = {}

    def after_call(http_response: Any, model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1
        if model.has_streaming_output:  # GetObject: the body the caller then reads
            size = int(http_response.headers.get("content-length") or 0)
        else:
            size = len(http_response.content or b"")
        body[model.name] = body.get(model.name, 0) + size

    s3_client().meta.events.register("after-call.s3", after_call)
    start = time.perf_counter()
    manifest = load_manifest(manifest_uri)
    loaded = time.perf_counter()
    plan = build_plan(manifest, open_storage(manifest.output))
    planned = time.perf_counter()
    return {"requests": calls, "bytes": body, "manifest_s": loaded - start, "plan_s": planned - loaded,
            "todo": len(plan.todo), "skipped": len(plan.skipped), "failed": len(plan.failed)}


def _png(seed: int, kind: str = "content") -> bytes:
    """A 64x48 noisy picture (~9 kB as PNG): big enough that reading it shows in the byte counts."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed if kind == "content" else 10_000 + seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def setup(client: Any, bucket: str, folder: Path, photos: int, styles: int) -> tuple[str, Path]:
    """Inputs, the two manifests and the finished results; returns (S3 manifest URI, local manifest)."""
    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=bucket, Key=item[0], Body=item[1])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [(f"incoming/p{i:05d}.png", _png(i)) for i in range(photos)]
                      + [(f"art/a{j}.png", _png(1000 + j, "style")) for j in range(styles)]))
    common = [f"output: s3://{bucket}/gallery", f"cache: s3://{bucket}/cache",
              "engine: {size: 64, iterations: 300, weights: 'random:1'}"]
    s3_text = "\n".join(["version: 1", "name: nightly", *common, "contents: ['../incoming/*.png']",
                         "styles: ['../art/*.png']"]) + "\n"
    client.put_object(Bucket=bucket, Key="jobs/nightly.yaml", Body=s3_text.encode())
    return f"s3://{bucket}/jobs/nightly.yaml", folder / "explicit.yaml"


def write_explicit(path: Path, bucket: str, keys: list[str], styles: int) -> None:
    lines = ["version: 1", "name: nightly", f"output: s3://{bucket}/gallery", f"cache: s3://{bucket}/cache",
             "engine: {size: 64, iterations: 300, weights: 'random:1'}", "contents:",
             *(f"  - s3://{bucket}/{key}" for key in keys), "styles:",
             *(f"  - s3://{bucket}/art/a{j}.png" for j in range(styles))]
    path.write_text("\n".join(lines) + "\n")


def finish_results(manifest_uri: str) -> int:
    """Results of every pair, written as a run writes them, then recorded as the flow does."""
    from tasks.layout import DONE, PairOutcome
    from tasks.manifest import load_manifest
    from tasks.plan import build_plan, record_results
    from tasks.stores import open_storage

    manifest = load_manifest(manifest_uri)
    output = open_storage(manifest.output)
    plan = build_plan(manifest, output)
    image = _png(0)

    def write(job: Any) -> None:
        meta = {"fingerprint": job.fingerprint, "content": job.content, "style": job.style}
        output.write(job.image_key, image, content_type="image/png", metadata=meta)
        record = {"fingerprint": job.fingerprint, "pair": job.name, "inputs": job.inputs,
                  "config": {k: str(v) for k, v in vars(job.config).items()}}
        output.write(job.provenance_key, json.dumps(record, indent=2).encode(), content_type="application/json",
                     metadata=meta)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, plan.todo))
    record_results(plan, output, [PairOutcome(j.content, j.style, DONE) for j in plan.todo])
    return len(plan.todo)


def run_row(code_root: Path, manifest: str, env: dict[str, str]) -> dict[str, Any]:
    script = f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.s3_planning import measure; " \
             f"sys.path.pop(0); import tasks; print('CODE ' + tasks.__path__[0]); " \
             f"print('RESULT ' + json.dumps(measure({manifest!r})))"
    # The code under test first on the path; this file is imported from the current tree only
    # for `measure`, which imports the pipeline lazily (so from code_root).
    done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": str(code_root)},
                          cwd=code_root, capture_output=True, text=True, check=False)  # cwd: '' leads sys.path
    lines = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in done.stdout.splitlines() if " " in ln}
    if "RESULT" not in lines or Path(lines["CODE"]) != code_root / "tasks":
        raise RuntimeError(f"measuring with {code_root} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines["RESULT"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--styles", type=int, default=5)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--before-ref", default=BEFORE_REF)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.s3support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer

    work = Path(tempfile.mkdtemp(prefix="nst-s3-planning-"))
    before_root = work / "before"
    before_root.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before_ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(before_root)], input=archive.stdout, check=True)
    server = SeaweedServer(work / "data", work / "weed.log")
    server.start()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_REGION": "us-east-1", "NST_S3_ENDPOINT_URL": server.endpoint, "NST_S3_ADDRESSING_STYLE": "path"}
    os.environ.update(env)
    try:
        client: Any = server.client()
        bucket = "nightly"
        client.create_bucket(Bucket=bucket)
        started = time.perf_counter()
        s3_manifest, explicit = setup(client, bucket, work, args.photos, args.styles)
        results = finish_results(s3_manifest)
        setup_s = time.perf_counter() - started
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.put_object(Bucket=bucket, Key=f"incoming/p{i:05d}.png", Body=_png(i)),
                          range(args.photos, args.photos + args.new)))
        write_explicit(explicit, bucket, [f"incoming/p{i:05d}.png" for i in range(args.photos + args.new)], args.styles)
        index = {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                 for item in client.list_objects_v2(Bucket=bucket, Prefix="cache/plan-index/").get("Contents", [])}

        rows = []
        for label, root, manifest in (("before (base planner, explicit local manifest)", before_root, str(explicit)),
                                      ("after, same explicit local manifest", REPO, str(explicit)),
                                      ("after, S3 manifest with globs", REPO, s3_manifest)):
            for key, data in index.items():  # every row plans the same state
                client.put_object(Bucket=bucket, Key=key, Body=data)
            rows.append((label, run_row(root, manifest, env)))
        # The index now knows the new photos (their results are not written): the floor.
        rows.append(("after, globs, planned again (new photos already hashed)", run_row(REPO, s3_manifest, env)))
    finally:
        server.kill()

    new_bytes = sum(len(_png(i)) for i in range(args.photos, args.photos + args.new))
    index_bytes = sum(len(data) for data in index.values())
    lines = [f"{results} finished results ({args.photos} photos x {args.styles} styles), {args.new} new photos "
             f"({new_bytes:,} bytes in all), tiny PNGs; plan index {index_bytes:,} bytes; setup {setup_s:.0f} s. "
             f"Before = `{args.before_ref}`.", "",
             "| planner | requests (by operation) | bytes downloaded: objects (GetObject) | listings + HEAD | "
             "manifest s | plan s | total s | todo / skipped |", "|---|---|---|---|---|---|---|---|"]
    for label, row in rows:
        requests = ", ".join(f"{op} {n}" for op, n in sorted(row["requests"].items()))
        objects = row["bytes"].get("GetObject", 0)
        other = sum(v for k, v in row["bytes"].items() if k != "GetObject")
        lines.append(f"| {label} | {sum(row['requests'].values())}: {requests} | {objects:,} | {other:,} | "
                     f"{row['manifest_s']:.2f} | {row['plan_s']:.2f} | {row['manifest_s'] + row['plan_s']:.2f} | "
                     f"{row['todo']} / {row['skipped']} |")
    table = "\n".join(lines)
    print(table)
    out = REPO / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "s3_planning.md").write_text(table + "\n")
    (out / "s3_planning.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
