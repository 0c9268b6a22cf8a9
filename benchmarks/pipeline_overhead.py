"""What the pipeline (manifest, Prefect flow, task runs, cache, writes, gallery) costs on top of
the engine: the same pairs through `stylize_manifest` and through `nst_engine.stylize` directly.

    .venv/bin/python -m benchmarks.pipeline_overhead            # ~3 min on 2 cores
    .venv/bin/python -m benchmarks.pipeline_overhead --quick

The flow runs on Prefect's temporary local server, started by a warm-up run first so that its
~30 s start is not counted. Overhead per pair = (flow wall - engine wall) / pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from nst_engine import load_image, stylize  # noqa: E402
from nst_engine.vgg import build_extractor  # noqa: E402
from tasks.options import RunOptions
from tasks.manifest import load_manifest  # noqa: E402
from tasks.plan import build_plan  # noqa: E402
from tasks.stores import open_storage  # noqa: E402

from benchmarks.demo_manifest import CONTENTS, RESULTS, STYLES, manifest_text  # noqa: E402


def engine_direct(manifest_path: Path, batch_size: int) -> float:
    """The engine alone on the same pairs, in the same batches the flow would make."""
    manifest = load_manifest(manifest_path)
    plan = build_plan(manifest, open_storage(str(manifest_path.parent / "direct-out")), RunOptions(batch_size=batch_size))
    config = manifest.engine
    build_extractor(config.weights, set(config.content_layers) | set(config.style_layers), config.pooling)
    start = time.perf_counter()
    for batch in plan.batches:
        contents = [load_image(job.content_uri) for job in batch]
        styles = [[load_image(uri) for uri in job.style_uris] for job in batch]
        stylize(contents, styles, batch[0].config)
    return time.perf_counter() - start


def engine_direct_in_subprocess(manifest_path: Path, batch_size: int) -> float:
    """engine_direct in a fresh process: torch work on this process's main thread would leave an
    OpenMP thread team here that competes with the flow's worker threads on 2 cores."""
    code = (f"from benchmarks.pipeline_overhead import engine_direct; from pathlib import Path; "
            f"print(engine_direct(Path({str(manifest_path)!r}), {batch_size}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[1])
    return float(done.stdout.strip().splitlines()[-1])


def through_flow(path: Path, batch_size: int) -> float:
    from flows.stylize_manifest import run_manifest

    start = time.perf_counter()
    state, report = run_manifest(str(path), RunOptions(batch_size=batch_size))
    elapsed = time.perf_counter() - start
    assert report["counts"]["done"] == len(CONTENTS) * len(STYLES), report["counts"]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.iterations = 32, 3
    pairs = len(CONTENTS) * len(STYLES)
    folder = Path(tempfile.mkdtemp(prefix="nst-overhead-"))
    try:
        warm = folder / "warm.yaml"  # starts the temporary server and loads torch/VGG once
        warm.write_text(manifest_text("warm-up", 32, 1))
        from flows.stylize_manifest import run_manifest

        run_manifest(str(warm))
        rows = []
        for batch_size in (1, 4):
            path = folder / f"m{batch_size}.yaml"
            path.write_text(manifest_text(f"overhead-b{batch_size}", args.size, args.iterations))
            engine = engine_direct_in_subprocess(path, batch_size)
            shutil.rmtree(folder / "out", ignore_errors=True)
            shutil.rmtree(folder / "cache", ignore_errors=True)
            flow = through_flow(path, batch_size)
            rows.append({"batch_size": batch_size, "flow_seconds": flow, "engine_seconds": engine,
                         "overhead_per_pair": (flow - engine) / pairs,
                         "overhead_fraction": (flow - engine) / engine})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines = [f"{pairs} pairs ({len(CONTENTS)} x {len(STYLES)}), {args.size} px, {args.iterations} iterations, "
             "CPU; engine alone = nst_engine.stylize on the same batches the flow makes", "",
             "| batch size | flow wall s | engine wall s | overhead per pair s | overhead / engine time |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['batch_size']} | {row['flow_seconds']:.1f} | {row['engine_seconds']:.1f} | "
                     f"{row['overhead_per_pair']:.2f} | {100 * row['overhead_fraction']:.1f}% |")
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline_overhead.md").write_text(table)
    (RESULTS / "pipeline_overhead.json").write_text(json.dumps({"rows": rows, "size": args.size,
                                                                "iterations": args.iterations}, indent=2))


if __name__ == "__main__":
    main()
