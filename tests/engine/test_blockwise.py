"""Exact block-wise evaluation: blocks give the whole image's loss and gradient."""

from __future__ import annotations

import pytest
import torch

from nst_engine import EngineConfig, blockwise, memory, stylize
from nst_engine.errors import ConfigError
from nst_engine.optimize import _Problem
from nst_engine.statistics import get_statistic
from nst_engine.vgg import VGGFeatures, random_state
from tests.conftest import make_image

# Shallow objective for the quick cases: relu3_1's receptive field is 24 px, so a 16 px margin
# holds all of it and blocks of a 96 px image still cut it (crops of 64-80 px).
SHALLOW = {"style_layers": ("relu1_1", "relu2_1", "relu3_1"), "content_layers": ("relu2_1",)}


def test_blocks_partition_the_image_with_aligned_clipped_margins() -> None:
    plan = blockwise.plan_blocks(100, 70, 32, 16)
    assert (plan.rows, plan.cols) == (4, 3)
    covered = torch.zeros(100, 70, dtype=torch.int64)
    for block in plan.blocks:
        covered[block.top:block.bottom, block.left:block.right] += 1
        assert block.top % 16 == 0 and block.left % 16 == 0
        assert block.crop_top % 16 == 0 and block.crop_left % 16 == 0  # the poolings line up
        assert block.crop_top == max(0, block.top - 16) and block.crop_bottom == min(100, block.bottom + 16)
    assert bool((covered == 1).all())  # inner blocks partition the image
    with pytest.raises(ValueError):
        blockwise.plan_blocks(100, 70, 40, 16)


def _whole_and_blocked(config: EngineConfig, height: int, width: int,
                       block: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Terms and gradient of one random image, whole and in blocks of `block` px."""
    extractor = VGGFeatures(random_state(0), set(config.content_layers) | set(config.style_layers), config.pooling)
    generator = torch.Generator().manual_seed(1)
    content, x = torch.rand(2, 3, height, width, generator=generator).split(1)
    style = torch.rand(1, 3, 64, 64, generator=generator)
    stat = get_statistic(config.style_statistic)
    with torch.no_grad():
        style_features, content_features = extractor(style), extractor(content)
    targets = {name: stat.compute(style_features[name]) for name in config.style_layers}
    content_targets = {name: content_features[name] for name in config.content_layers}
    items = torch.arange(1)
    whole = x.clone().requires_grad_(True)
    terms = _Problem(extractor, content_targets, targets, config).terms(whole, items)
    terms["total"].sum().backward()
    plan = blockwise.plan_blocks(height, width, block, config.block_margin)
    blocked_targets = blockwise.feature_maps(extractor, content, plan, config.content_layers)
    problem = _Problem(extractor, blocked_targets, targets, config, plan)
    blocked_terms, grad = problem.blocked(items).loss_and_grad(x)
    assert whole.grad is not None
    return terms, whole.grad, blocked_terms, grad


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("statistic", ["gram", "mean_covariance"])
@pytest.mark.parametrize("normalization", ["none", "target"])
def test_the_blocked_gradient_is_the_whole_images(statistic: str, normalization: str) -> None:
    config = EngineConfig(weights="random", pooling="max", style_statistic=statistic, normalization=normalization,
                          content_weight=1.0, style_weight=1e3, tv_weight=1.0, block_margin=16, **SHALLOW)
    terms, grad, blocked_terms, blocked_grad = _whole_and_blocked(config, 96, 96, 48)  # 2 x 2 blocks
    assert _relative(blocked_grad, grad) < 1e-5
    for name in ("content", "style", "tv", "total"):
        assert float(blocked_terms[name]) == pytest.approx(float(terms[name].detach()), rel=1e-5)


def test_without_a_margin_blocks_are_not_exact() -> None:
    """The check above can fail: blocks that see no context get another gradient."""
    config = EngineConfig(weights="random", pooling="max", style_weight=1e3, block_margin=0, **SHALLOW)
    _, grad, _, blocked_grad = _whole_and_blocked(config, 96, 96, 48)
    assert _relative(blocked_grad, grad) > 1e-3


def test_the_default_margin_covers_the_gatys_layers() -> None:
    """relu5_1 and relu4_2 with the default 96 px margin: blocks of 96 px along a 48 x 320 strip
    (crops of 192-288 px, so every block is cut off from part of the image). The most sensitive
    case: mean/covariance with the normalisation (benchmarks/blockwise_exactness.py has all four)."""
    config = EngineConfig(weights="random", pooling="max", style_statistic="mean_covariance", normalization="target",
                          content_weight=1.0, style_weight=1e3, tv_weight=0.0)
    assert config.style_layers[-1] == "relu5_1" and config.block_margin == 96
    terms, grad, blocked_terms, blocked_grad = _whole_and_blocked(config, 48, 320, 96)
    assert _relative(blocked_grad, grad) < 1e-5
    assert float(blocked_terms["total"]) == pytest.approx(float(terms["total"].detach()), rel=1e-5)


def test_blocked_and_whole_stylizations_give_the_same_image() -> None:
    # The random-weights objective (avg pooling, TV, the target normalisation) reaches relu4_1,
    # whose 68 px receptive field a 48 px margin holds: crops of 64-80 px in a 96 px image.
    # The fixed step: the Wolfe line search's branches (f >= f_prev, ...) can flip on float noise
    # and take another path (seen once: 6 vs 7 evaluations at the fine scale, pixels 0.06 apart).
    base = EngineConfig(size=96, scales=(0.5, 1.0), iterations=3, weights="random", device="cpu",
                        block_margin=48, tolerance=0.0, line_search="fixed")
    assert base.style_layers[-1] == "relu4_1"
    content, style = make_image(96, 64, seed=3), make_image(64, 64, seed=4, kind="style")
    whole = stylize([content], [[style]], base)
    blocked = stylize([content], [[style]], base.replace(block_size=32))
    # Measured: 4.5e-5 at most, 7.5e-7 on average. A margin short of the receptive field (48 px
    # with the Gatys layers, up to relu5_1) gave 1.3e-2 at most.
    difference = (blocked.images - whole.images).abs()
    assert float(difference.max()) < 1e-3 and float(difference.mean()) < 1e-5
    assert blocked.losses[0].total == pytest.approx(whole.losses[0].total, rel=1e-5)
    coarse, fine = blocked.optimization(0)
    assert coarse["blocks"] == {"size": 32, "margin": 48, "grid": [1, 2], "count": 2}  # 48 x 32 px
    assert fine["blocks"] == {"size": 32, "margin": 48, "grid": [2, 3], "count": 6}  # 96 x 64 px
    assert whole.optimization(0)[1]["blocks"] is None


def test_block_settings_are_checked_and_leave_fingerprints_alone() -> None:
    with pytest.raises(ConfigError) as caught:
        EngineConfig.from_mapping({"block_size": 100, "block_margin": 20})
    assert {field for field, _ in caught.value.problems} == {"engine.block_size", "engine.block_margin"}
    plain = EngineConfig()
    assert EngineConfig(block_size=256).fingerprint() == plain.fingerprint()  # exact: the same image
    assert EngineConfig(block_margin=32).fingerprint() != plain.fingerprint()  # too little context changes it


def test_the_memory_model_plans_blocks_and_a_shorter_history(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_mem_available", lambda: 1 << 50)  # the budget decides, not this machine
    config = EngineConfig(iterations=500, lbfgs_history=100)  # the shrinking shows above 25 pairs
    whole = memory.estimate(2048, 2048, config).per_image
    assert memory.plan_block(2048, 2048, config, "cpu", budget=2 * whole) == 0  # fits: no blocks
    budget = whole // 3
    block = memory.plan_block(2048, 2048, config, "cpu", budget=budget)
    assert 0 < block < 2048 and block % 16 == 0
    assert memory.blocked_estimate(2048, 2048, block, config).batch_bytes(1) <= budget
    assert memory.blocked_estimate(2048, 2048, block + 16, config).batch_bytes(1) > budget
    assert memory.lbfgs_history(config, 1024, 1024) == 100  # sizes up to 1024^2 keep theirs
    assert memory.lbfgs_history(config, 2048, 2048) == 25
    assert memory.lbfgs_history(config, 8192, 8192) == memory.MIN_LBFGS_HISTORY


def test_cpu_plans_leave_half_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4096 px run planned against all of MemAvailable (23 GiB) took 2848 px blocks estimated at
    22.7 GiB and was OOM-killed; the plan now fills at most half of it."""
    monkeypatch.setattr(memory, "_mem_available", lambda: 23 << 30)
    config = EngineConfig(size=4096)
    block = memory.plan_block(3216, 4096, config, "cpu")
    assert 0 < block < 2848
    assert memory.blocked_estimate(3216, 4096, block, config).batch_bytes(1) <= (23 << 30) // 2
