"""The `nst` command line: `nst stylize`, `nst validate`, `nst run`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer, one image or a manifest.")
    commands = parser.add_subparsers(dest="command", required=True)

    stylize = commands.add_parser("stylize", help="stylize one content image with one or more style images")
    stylize.add_argument("content", type=Path)
    stylize.add_argument("styles", type=Path, nargs="+", metavar="style")
    stylize.add_argument("-o", "--output", type=Path, required=True, help="output image (.png .jpg .webp)")
    _engine_options(stylize)
    stylize.add_argument("--quiet", action="store_true", help="no progress bar")
    stylize.set_defaults(handler=_cmd_stylize)

    for name, help_text in (("validate", "check a manifest and list every problem"),
                            ("run", "stylize every pair of a manifest through the Prefect flow")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("manifest")
        sub.set_defaults(handler=_manifest_handler(name))
        if name == "run":
            sub.add_argument("--output", help="output folder or s3:// URI (overrides the manifest)")
            sub.add_argument("--force", action="store_true", help="redo pairs whose result is already there")
            sub.add_argument("--only", help="comma-separated content/style ids to restrict the run to")
            sub.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
            sub.add_argument("--batch-size", type=int, default=None, help="pairs per task (default 4)")
            sub.add_argument("--gpu-slots", type=int, default=None, help="concurrent GPU tasks (default 1)")
            sub.add_argument("--gpu-limit", help="name of a Prefect global concurrency limit to hold GPU slots "
                                                 "in (shared by every worker on one server); default: a "
                                                 "semaphore in this process")
            sub.add_argument("--weights", help="VGG-19 weights for every pair (overrides the manifest)")
            sub.add_argument("--fallback-weights", help="weights to use when the manifest's cannot be "
                                                        "loaded (the demo uses `random`, and says so loudly)")
            _scale_options(sub)

    from flows.deploy_commands import add_schedule_options, cmd_deploy, cmd_serve

    serve = commands.add_parser("serve", help="serve a manifest's scheduled runs from this process (flow.serve)")
    add_schedule_options(serve)
    serve.set_defaults(handler=cmd_serve)
    deploy = commands.add_parser("deploy", help="register a manifest's deployment for a process work pool")
    add_schedule_options(deploy)
    deploy.add_argument("--pool", default="nst-process", help="work pool, created if missing (default nst-process)")
    deploy.set_defaults(handler=cmd_deploy)
    return parser


def _scale_options(run: argparse.ArgumentParser) -> None:
    """Running on many GPUs: a Dask cluster, or shards on Prefect workers (README)."""
    group = run.add_argument_group("scale-out")
    group.add_argument("--task-runner", choices=("threads", "dask"), default="threads",
                       help="threads (default): this process; dask: a Dask cluster, one worker per GPU")
    group.add_argument("--dask-address", help="scheduler of a running Dask cluster, e.g. tcp://10.0.0.5:8786 "
                                              "(workers started with --nthreads 1 --resources GPU=1)")
    group.add_argument("--workers", type=int, help="start a local Dask cluster of this many workers "
                                                   "(default: one per visible GPU)")
    group.add_argument("--shards", type=int, help="split the pairs into this many deployment runs for the "
                                                  "Prefect workers of a work pool; this process merges them")
    group.add_argument("--deployment", help="the shard deployment (default stylize-manifest/nst-shard, "
                                            "registered by `python -m deployments.shards`)")
    group.add_argument("--shard-timeout", type=float, help="seconds a shard may run, or the run may go "
                                                           "without progress, before it is reported unfinished")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


# (flag, EngineConfig field, type, help); None type = store_true
_ENGINE_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--size", "size", int, "output max side in pixels (default 512)"),
    ("--iterations", "iterations", int, "iterations per scale (default 500)"),
    ("--scales", "scales", _floats, "coarse-to-fine fractions of --size, e.g. 0.25,0.5,1 (default 1)"),
    ("--scale-iterations", "scale_iterations", _ints, "iterations at each scale, e.g. 300,100,50"),
    ("--optimizer", "optimizer", str, "lbfgs (default) or adam"),
    ("--lr", "learning_rate", float, "step size (default 1 for L-BFGS, 0.02 for Adam)"),
    ("--init", "init", str, "content (default), noise or style"),
    ("--content-weight", "content_weight", float, "alpha (default 1)"),
    ("--style-weight", "style_weight", float, "beta (default 1e6)"),
    ("--tv-weight", "tv_weight", float, "total variation weight (default 0)"),
    ("--content-layers", "content_layers", lambda t: tuple(t.split(",")), "default relu4_2"),
    ("--style-layers", "style_layers", lambda t: tuple(t.split(",")), "default relu1_1,...,relu5_1"),
    ("--style-layer-weights", "style_layer_weights", _floats, "one weight per style layer"),
    ("--style-blend", "style_blend", _floats, "weights of several style images, e.g. 0.7,0.3"),
    ("--style-scale", "style_scale", float, "style image size relative to the output (default 1)"),
    ("--pooling", "pooling", str, "max (default) or avg"),
    ("--preserve-colors", "preserve_colors", None, "keep the content's original colours"),
    ("--match-histogram", "match_histogram", None, "match the style's colours to the content's first"),
    ("--weights", "weights", str, "imagenet (default), random[:SEED], or a VGG-19 .pth file"),
    ("--seed", "seed", int, "random seed (default 0)"),
    ("--precision", "precision", str, "float32 (default), float16 or bfloat16"),
    ("--device", "device", str, "auto (default), cpu, cuda or cuda:N"),
)


def _engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    for flag, dest, kind, help_text in _ENGINE_FLAGS:
        if kind is None:
            group.add_argument(flag, dest=dest, action="store_true", default=None, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=kind, default=None, help=help_text)


def engine_config_from_args(args: argparse.Namespace) -> Any:
    from nst_engine.config import EngineConfig

    values = {dest: getattr(args, dest) for _, dest, _, _ in _ENGINE_FLAGS if getattr(args, dest) is not None}
    return EngineConfig(**values)


def _cmd_stylize(args: argparse.Namespace) -> int:
    from nst_engine import EngineError
    from flows.stylize_one import stylize_files

    try:
        config = engine_config_from_args(args)
        record = stylize_files(args.content, args.styles, args.output, config, progress=not args.quiet)
    except EngineError as exc:
        print(f"nst stylize: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    losses = record["losses"]
    print(f"wrote {args.output} (loss {losses['total']:.4g}, {record['seconds']:.1f} s on {record['device']})")
    return 0


def _manifest_handler(name: str) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        from flows import manifest_commands

        return getattr(manifest_commands, f"cmd_{name}")(args)

    return handle


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
