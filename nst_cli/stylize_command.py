"""`nst stylize`: one content image, one or more style images, one output and its provenance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nst_cli.engine_flags import add_engine_flags, engine_config_from_args
from nst_cli.errors import fail
from nst_engine import EngineConfig, ImageError, ProgressEvent, load_image, stylize
from nst_engine.files import write_atomic
from nst_engine.images import fit_size, save_image
from nst_engine.optimize import MIN_SIDE
from nst_engine.provenance import build_provenance, sha256_bytes
from nst_engine.snapshots import save_every, snapshot_paths
from tasks.output_guard import check_stylize_output


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("stylize", help="stylize one content image with one or more style images")
    parser.add_argument("content", type=Path, help="the photo to stylize")
    parser.add_argument("styles", type=Path, nargs="+", metavar="style", help="style image(s), blended when several")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image (.png .jpg .webp)")
    add_engine_flags(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output that nst stylize did not make (never an input)")
    parser.add_argument("--save-every", type=int, metavar="N",
                        help="also write the image being optimized every N iterations, beside the output "
                             "(out.scale1.iter0050.png, ...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = engine_config_from_args(args)
    if args.save_every is not None and args.save_every < 1:
        fail(f"--save-every {args.save_every}: give a whole number of iterations >= 1")
    record = stylize_files(args.content, args.styles, args.output, config, progress=not args.quiet,
                           overwrite=args.overwrite, save_every_n=args.save_every)
    losses = record["losses"]
    print(f"wrote {args.output} (loss {losses['total']:.4g}, {record['seconds']:.1f} s on {record['device']})")
    return 0


def provenance_path(output: Path) -> Path:
    return output.with_suffix(".json")


def stylize_files(content: Path, styles: Sequence[Path], output: Path, config: EngineConfig,
                  progress: bool = True, overwrite: bool = False, save_every_n: int | None = None) -> dict[str, Any]:
    """Stylize `content` with `styles`, write `output` then its provenance JSON; return the record.

    Refuses, before any work, to write over an input or a file it did not make (unless
    `overwrite`), and an output format it cannot write (OutputRefusedError).
    """
    snapshots = snapshot_paths(output, config.iterations_per_scale(), save_every_n) if save_every_n else []
    check_stylize_output(output, provenance_path(output), [content, *styles], overwrite=overwrite,
                         snapshots=snapshots)
    blobs = {path: _read(path) for path in (content, *styles)}
    content_image = load_image(blobs[content], name=str(content))
    style_images = [load_image(blobs[path], name=str(path)) for path in styles]
    fit_size(content_image.size, config.size, MIN_SIDE, name=str(content))  # a too-thin photo, named
    total = sum(config.iterations_per_scale())
    with _progress_bar(progress) as bar:
        task = bar.add_task("stylizing", total=total)
        done = 0

        def on_step(event: ProgressEvent) -> None:
            nonlocal done
            done += 1
            bar.update(task, completed=done,
                       description=f"scale {event.scale_index + 1}/{event.scale_count} "
                                   f"{event.width}x{event.height} loss {event.losses.total:.4g}")

        callback = save_every(save_every_n, output, then=on_step) if save_every_n else on_step
        result = stylize([content_image], [style_images], config, callback=callback)
    inputs = {"content": {"path": str(content), "sha256": sha256_bytes(blobs[content])},
              "styles": [{"path": str(p), "sha256": sha256_bytes(blobs[p])} for p in styles]}
    record = build_provenance(config, result.weights, result.losses[0], result.seconds, result.device, inputs,
                              optimization=result.optimization(0))
    # The snapshots this command wrote: a rerun may replace them, and no other file of that name.
    record["snapshots"] = [path.name for path in snapshots if path.is_file()]
    save_image(result.pil_images()[0], output)
    write_atomic(provenance_path(output), json.dumps(record, indent=2).encode())  # after the image
    return record


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(str(path), f"cannot read file ({exc.strerror or exc})") from None


def _progress_bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)
