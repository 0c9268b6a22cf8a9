"""Block-wise vs whole-image gradient of the Gatys objective at a size where both fit.

Random weights (seed 0), relu1_1..relu5_1 and relu4_2, max pooling; one random image of
`--size` x (`--size` - 32) px cut into blocks of `--block` px with `--margin` px of context.
Prints, per statistic and normalisation, both losses and the gradient's relative error
|g_blocked - g_whole| / |g_whole|.

    .venv/bin/python -m benchmarks.blockwise_exactness --size 256 --block 128 --margin 96
"""

from __future__ import annotations

import argparse
import sys

import torch

from nst_engine import EngineConfig, blockwise
from nst_engine.optimize import _Problem
from nst_engine.statistics import get_statistic
from nst_engine.vgg import VGGFeatures, random_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--margin", type=int, default=96)
    args = parser.parse_args(argv)
    height, width = args.size, args.size - 32
    print("| statistic | normalisation | whole loss | blocked loss | gradient relative error |")
    print("|---|---|---:|---:|---:|")
    for statistic in ("gram", "mean_covariance"):
        for normalization in ("none", "target"):
            config = EngineConfig(weights="random:0", style_statistic=statistic, normalization=normalization,
                                  content_weight=1.0, style_weight=1e3, tv_weight=1.0, pooling="max",
                                  block_margin=args.margin)
            extractor = VGGFeatures(random_state(0), set(config.content_layers) | set(config.style_layers),
                                    config.pooling)
            generator = torch.Generator().manual_seed(0)
            content = torch.rand(1, 3, height, width, generator=generator)
            x = torch.rand(1, 3, height, width, generator=generator)
            style = torch.rand(1, 3, 96, 96, generator=generator)
            stat = get_statistic(statistic)
            with torch.no_grad():
                style_features, content_features = extractor(style), extractor(content)
            targets = {k: stat.compute(style_features[k]) for k in config.style_layers}
            items = torch.arange(1)
            whole = x.clone().requires_grad_(True)
            terms = _Problem(extractor, {k: content_features[k] for k in config.content_layers}, targets,
                             config).terms(whole, items)
            terms["total"].sum().backward()
            plan = blockwise.plan_blocks(height, width, args.block, args.margin)
            blocked_targets = blockwise.feature_maps(extractor, content, plan, config.content_layers)
            blocked, grad = _Problem(extractor, blocked_targets, targets, config, plan).blocked(items).loss_and_grad(x)
            assert whole.grad is not None
            error = float((grad - whole.grad).norm() / whole.grad.norm())
            print(f"| {statistic} | {normalization} | {float(terms['total'].detach()):.7g} | {float(blocked['total']):.7g} | "
                  f"{error:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
