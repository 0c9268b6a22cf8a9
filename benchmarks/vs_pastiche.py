"""Time to pastiche's picture: pastiche 1.6.0 itself against this engine on its objective.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.vs_pastiche [--size 192] [--steps 150] [--threads 2]

One process, one photo and painting (astronaut x starry_night), one size, one thread count:

1. The photo and the painting are resized once (max side --size, this engine's resize) and saved
   as PNGs; both sides read those files at their native size (pastiche with its style size set to
   the file's own), so neither resizes.
2. (a) pastiche, unmodified (`pastiche.pastiche.PasticheArtist`, `.draw()` per step: torch L-BFGS,
   max_iter 1, lr 1, history 100, one evaluation per step, pixels unbounded in Caffe units),
   --steps steps, each timed. Its picture is written by its own `save_image` (rounded, clipped).
3. (b) this engine with pastiche's objective exactly and the engine's optimizer defaults:
   pastiche's loss = 0.01 mse(F_relu4_2) + sum_l (10 / C_l^2) mse(F F^T / (H W)) = 0.01 x our
   content term + 10 x our style term (our Gram is F F^T / (C H W); normalization none, layer
   weights 1, max pooling, content init, TV 0). Checked here: pastiche's own _calc_loss and ours
   agree on its start and on its final float picture (relative difference < 1e-4, else the run
   stops). The engine runs until its written (8-bit) picture's loss is <= the loss of
   pastiche's written picture, scored by one shared function (ours, in pastiche's objective).
4. Per-evaluation time, interleaved: --rounds rounds of --per-round pastiche steps then as many
   engine evaluations at full size (fixed step, one evaluation per iteration), medians compared.

Prints a markdown table (also benchmarks/results/vs_pastiche.md and .json) and writes
pastiche's and the engine's pictures side by side to docs/vs-pastiche.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from benchmarks.race import Race, race
from nst_engine import images
from nst_engine.config import CONTENT_LAYERS, STYLE_LAYERS, EngineConfig
from nst_engine.optimize import evaluate_losses, stylize
from nst_engine.targets import compute_style_targets
from nst_engine.vgg import CAFFE_MEAN_BGR, VGGFeatures, build_extractor

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo" / "images"
RESULTS = ROOT / "benchmarks" / "results" / "vs_pastiche"
PICTURE = ROOT / "docs" / "vs-pastiche.png"

# pastiche 1.6.0's objective in this engine's terms (see the module docstring).
PASTICHE_OBJECTIVE = {"content_layers": CONTENT_LAYERS, "style_layers": STYLE_LAYERS,
                      "style_layer_weights": (1.0,) * len(STYLE_LAYERS), "content_weight": 0.01,
                      "style_weight": 10.0, "tv_weight": 0.0, "normalization": "none", "pooling": "max",
                      "init": "content", "weights": "original"}
AGREE = 1e-4  # relative: pastiche's _calc_loss against ours on the same picture


def pastiche_config(size: int, **optimizer: object) -> EngineConfig:
    """This engine set to pastiche's objective, with the engine's optimizer defaults unless given."""
    return EngineConfig(size=size, device="cpu", **PASTICHE_OBJECTIVE, **optimizer)  # type: ignore[arg-type]


class SharedLoss:
    """One loss function for both sides' pictures: this engine's, in pastiche's objective."""

    def __init__(self, extractor: VGGFeatures, content: Image.Image, style: Image.Image, config: EngineConfig):
        self.extractor, self.config = extractor, config
        self.content = images.to_tensor(content)
        targets = compute_style_targets(extractor, [images.to_tensor(style)], config.style_layers)
        self._targets = lambda _item, _side: targets

    def __call__(self, picture: torch.Tensor) -> float:
        """Loss of a [1, 3, H, W] RGB picture in [0, 1] units (not clamped: pastiche's float result
        may lie outside)."""
        return evaluate_losses(self.extractor, self.content, picture, self._targets, self.config)[0].total

    def written(self, picture: torch.Tensor) -> float:
        """Loss of the picture as an 8-bit file holds it."""
        return self((picture.clamp(0, 1) * 255).round() / 255)


def caffe_to_unit(x: torch.Tensor) -> torch.Tensor:
    """pastiche's [1, 3, H, W] BGR-minus-mean tensor -> RGB in [0, 1] units (unclamped)."""
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    return ((x.detach().cpu() + mean).flip(1) / 255).float()


def prepare_inputs(size: int, photo: str, painting: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in (photo, painting):
        image = images.resize_max_side(images.load_image(DEMO / f"{name}.jpg"), size)
        path = folder / f"{name}-{size}.png"
        image.save(path)
        paths.append(path)
    return paths[0], paths[1]


def run_pastiche(content: Path, style: Path, steps: int) -> tuple[object, dict[str, object]]:
    from pastiche.pastiche import PasticheArtist  # the peer under test, installed beside the project

    style_size = Image.open(style).size
    start = time.perf_counter()
    artist = PasticheArtist(str(content), [str(style)], device="cpu", style_size=(style_size[1], style_size[0]))
    built = time.perf_counter() - start
    step_seconds, losses = [], [artist.loss]
    for _ in range(steps):
        t = time.perf_counter()
        artist.draw()
        step_seconds.append(time.perf_counter() - t)
        losses.append(artist.loss)  # the loss of the point this step started from
    return artist, {"setup_seconds": built, "step_seconds": step_seconds, "losses": losses,
                    "seconds": sum(step_seconds)}


def engine_step_seconds(extractor: VGGFeatures, content: Image.Image, style: Image.Image, size: int,
                        count: int) -> list[float]:
    """Seconds of `count` full-size engine iterations (fixed step: one evaluation each)."""
    stamps: list[float] = []
    config = pastiche_config(size, iterations=count + 1, tolerance=0.0, line_search="fixed", scales=(1.0,))
    stylize([content], [[style]], config, extractor=extractor,
            callback=lambda event: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def per_evaluation(artist: object, extractor: VGGFeatures, content: Image.Image, style: Image.Image, size: int,
                   rounds: int, per_round: int) -> dict[str, list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        for _ in range(per_round):
            t = time.perf_counter()
            artist.draw()  # type: ignore[attr-defined]
            theirs.append(time.perf_counter() - t)
        ours += engine_step_seconds(extractor, content, style, size, per_round)
    return {"pastiche": theirs, "engine": ours}


def side_by_side(pictures: list[Image.Image], labels: list[str], path: Path) -> None:
    gap, band = 8, 18
    sheet = Image.new("RGB", (sum(p.width for p in pictures) + gap * (len(pictures) - 1),
                              max(p.height for p in pictures) + band), "white")
    draw = ImageDraw.Draw(sheet)
    left = 0
    for picture, label in zip(pictures, labels):
        sheet.paste(picture, (left, band))
        draw.text((left + 4, 3), label, fill="black")
        left += picture.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=192, help="max side of both pictures, pixels")
    parser.add_argument("--steps", type=int, default=150, help="pastiche's steps (one evaluation each)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    parser.add_argument("--pair", default="astronaut,starry_night", help="photo,painting in examples/demo/images")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved per-evaluation timing rounds")
    parser.add_argument("--per-round", type=int, default=4, help="steps per side per round")
    parser.add_argument("--cap", type=float, default=2.0, help="engine iteration cap per scale, x --steps")
    parser.add_argument("--picture", default=str(PICTURE), help="where the side-by-side PNG goes")
    parser.add_argument("--timing-only", action="store_true", help="only (c), the interleaved per-evaluation times")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photo, painting = args.pair.split(",")
    content_path, style_path = prepare_inputs(args.size, photo, painting, RESULTS)
    content, style = images.load_image(content_path), images.load_image(style_path)
    config = pastiche_config(args.size, iterations=max(1, round(args.cap * args.steps)))
    extractor, _ = build_extractor("original", set(config.content_layers) | set(config.style_layers), "max", "cpu")
    loss = SharedLoss(extractor, content, style, config)
    load = os.getloadavg()
    if args.timing_only:
        artist, _ = run_pastiche(content_path, style_path, 1)
        timing = per_evaluation(artist, extractor, content, style, args.size, args.rounds, args.per_round)
        ratio = statistics.median(timing["engine"]) / statistics.median(timing["pastiche"])
        print(f"per evaluation at {content.width}x{content.height}, {args.threads} threads, load {load[0]:.1f} -> "
              f"{os.getloadavg()[0]:.1f}: pastiche {_seconds(timing['pastiche'])}; engine {_seconds(timing['engine'])}; "
              f"engine / pastiche (medians) {ratio:.3f}")
        return 0

    print(f"(a) pastiche, {args.steps} steps at {content.width}x{content.height} ...", file=sys.stderr, flush=True)
    artist, theirs = run_pastiche(content_path, style_path, args.steps)
    start_theirs = float(theirs["losses"][0])  # type: ignore[index]
    start_ours = loss(images.to_tensor(content))
    final_theirs = float(artist._calc_loss().item())  # type: ignore[attr-defined]
    float_result = caffe_to_unit(artist.pastiche)  # type: ignore[attr-defined]
    final_ours = loss(float_result)
    agreement = max(abs(start_ours - start_theirs) / start_theirs, abs(final_ours - final_theirs) / final_theirs)
    if agreement > AGREE:
        print(f"objectives disagree: pastiche {start_theirs:.7g} / {final_theirs:.7g}, ours {start_ours:.7g} / "
              f"{final_ours:.7g} (relative {agreement:.2e} > {AGREE})", file=sys.stderr)
        return 1
    from pastiche.pastiche import save_image

    written_path = RESULTS / "pastiche.png"
    save_image(artist.pastiche, str(written_path))  # type: ignore[attr-defined]
    written_picture = images.load_image(written_path)
    target = loss(images.to_tensor(written_picture))
    outside = float(((float_result < 0) | (float_result > 1)).float().mean())

    print(f"(b) engine to pastiche's written loss {target:.6g} ...", file=sys.stderr, flush=True)
    ours: Race = race(extractor, content, style, config, target=target, judge=loss.written)

    # A stricter bar: the loss of pastiche's float result (its pixels unclipped, a picture no file
    # holds). The engine's pixels stay in range, so it may not get there: tolerance 0, up to the cap.
    print(f"(b2) engine to pastiche's float loss {final_ours:.6g} ...", file=sys.stderr, flush=True)
    strict: Race = race(extractor, content, style, dataclasses.replace(config, tolerance=0.0), target=final_ours,
                        judge=loss.written)

    print("(c) per-evaluation time, interleaved ...", file=sys.stderr, flush=True)
    timing = per_evaluation(artist, extractor, content, style, args.size, args.rounds, args.per_round)
    per_theirs, per_ours = statistics.median(timing["pastiche"]), statistics.median(timing["engine"])
    median_step = statistics.median(theirs["step_seconds"])  # type: ignore[arg-type]

    engine_picture = images.to_pil(ours.image) if ours.image is not None else written_picture
    engine_path = RESULTS / "engine.png"
    engine_picture.save(engine_path)
    reached = ours.reached_seconds is not None
    strict_reached = strict.reached_seconds is not None
    strict_picture = images.to_pil(strict.image) if strict.image is not None else written_picture
    side_by_side([written_picture, engine_picture, strict_picture],
                 [f"pastiche 1.6.0, {args.steps} steps", "nst_engine at its written loss: " +
                  (f"{ours.reached_evaluations:.0f} evals" if reached else "not reached"),
                  "at its float loss: " + (f"{strict.reached_evaluations:.0f} evals" if strict_reached
                                           else f"not in {strict.evaluations:.0f} evals")],
                 Path(args.picture))
    t_theirs = float(theirs["seconds"])  # type: ignore[arg-type]
    summary = {
        "size": [content.width, content.height], "steps": args.steps, "threads": args.threads,
        "load_average_before": load, "load_average_after": os.getloadavg(),
        "objective_agreement": agreement,
        "pastiche": {"seconds": t_theirs, "setup_seconds": theirs["setup_seconds"],
                     "median_step_seconds": median_step, "written_loss": target, "float_loss": final_ours,
                     "float_result_outside_0_255": outside, "start_loss": start_ours,
                     "losses": theirs["losses"], "step_seconds": theirs["step_seconds"]},
        "engine": {"config": config.to_dict(), "reached": reached, "seconds_to_target": ours.reached_seconds,
                   "evaluations_to_target": ours.reached_evaluations, "loss_at_target": ours.reached_loss,
                   "best_float_loss": ours.best(), "seconds": ours.seconds, "evaluations": ours.evaluations,
                   "points": [asdict(p) for p in ours.points]},
        "engine_to_float_loss": {"reached": strict_reached, "seconds_to_target": strict.reached_seconds,
                                 "evaluations_to_target": strict.reached_evaluations,
                                 "loss_at_target": strict.reached_loss, "best_float_loss": strict.best(),
                                 "seconds": strict.seconds, "evaluations": strict.evaluations},
        "float_time_ratio": (strict.reached_seconds / t_theirs) if strict_reached else None,
        "per_evaluation": {"pastiche": timing["pastiche"], "engine": timing["engine"],
                           "ratio": per_ours / per_theirs},
        "time_ratio": (ours.reached_seconds / t_theirs) if reached else None,
        "evaluation_ratio": (ours.reached_evaluations / args.steps) if reached else None,
    }
    table = _table(summary, config)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS.parent / "vs_pastiche.md").write_text(table + "\n")
    (RESULTS.parent / "vs_pastiche.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + f" s (median {statistics.median(values):.2f})"


def _strict_row(s: dict) -> str:  # type: ignore[type-arg]
    """The stricter bar: the engine's written picture against pastiche's float result's loss."""
    f, p = s["engine_to_float_loss"], s["pastiche"]
    if not f["reached"]:
        return (f"| to pastiche's float-result loss ({p['float_loss']:.6g}): seconds | {p['seconds']:.1f} | "
                f"not reached in {f['evaluations']:.0f} evaluations, {f['seconds']:.1f} s (best float "
                f"{f['best_float_loss']:.6g}) | - |")
    return (f"| to pastiche's float-result loss ({p['float_loss']:.6g}): seconds / evaluations | "
            f"{p['seconds']:.1f} / {s['steps']} | {f['seconds_to_target']:.1f} / {f['evaluations_to_target']:.1f} | "
            f"**{s['float_time_ratio']:.3f}** |")


def _table(s: dict, config: EngineConfig) -> str:  # type: ignore[type-arg]
    p, e, t = s["pastiche"], s["engine"], s["per_evaluation"]
    reached = e["reached"]
    rows = [
        f"pastiche 1.6.0 vs nst_engine, astronaut x starry_night at {s['size'][0]}x{s['size'][1]} px, "
        f"{s['threads']} torch threads, original VGG-19, pastiche's objective; load average "
        f"{s['load_average_before'][0]:.1f} before, {s['load_average_after'][0]:.1f} after",
        "",
        "| | pastiche | nst_engine | ratio |",
        "|---|---|---|---|",
        f"| loss of the written (8-bit) picture | {p['written_loss']:.6g} | "
        f"{e['loss_at_target']:.6g} |" if reached else
        f"| loss of the written (8-bit) picture | {p['written_loss']:.6g} | not reached (best float "
        f"{e['best_float_loss']:.6g}) |",
        f"| loss of the float result | {p['float_loss']:.6g} ({p['float_result_outside_0_255']:.2%} of values "
        f"outside 0-255) | | |",
        f"| seconds (optimization; pastiche: {s['steps']} steps) | {p['seconds']:.1f} | "
        + (f"{e['seconds_to_target']:.1f} | **{s['time_ratio']:.3f}** |" if reached else "- | - |"),
        f"| full-size evaluations | {s['steps']} | "
        + (f"{e['evaluations_to_target']:.1f} | {s['evaluation_ratio']:.3f} |" if reached else "- | - |"),
        _strict_row(s),
        f"| seconds per evaluation (interleaved medians) | {statistics.median(t['pastiche']):.3f} | "
        f"{statistics.median(t['engine']):.3f} | **{t['ratio']:.3f}** |",
        "",
        f"pastiche setup (weights, targets) {p['setup_seconds']:.1f} s, not counted; engine clock from the "
        f"stylize call (style targets included). Objectives agree to {s['objective_agreement']:.1e} relative. "
        f"Engine optimizer: {config.optimizer}, line search {config.line_search}, history {config.lbfgs_history}, "
        f"scales {list(config.scales)}, tolerance {config.tolerance}/{config.tolerance_window}.",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
