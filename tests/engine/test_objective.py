"""Objective profiles, the balanced normalisation, style statistics and init images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_engine import EngineConfig, StyleTargets, compute_style_targets, stylize
from nst_engine.config import GATYS_OBJECTIVE, RANDOM_OBJECTIVE
from nst_engine.errors import EngineError, ImageError
from nst_engine.images import save_image
from nst_engine.losses import content_loss, style_loss, style_norms, target_norms
from nst_engine.statistics import STATISTICS, get_statistic
from nst_engine.vgg import VGGFeatures, random_state
from tasks.style_cache import style_cache_key
from tests.conftest import make_image


def test_random_weights_take_the_random_objective_unless_the_user_sets_one() -> None:
    auto = EngineConfig(weights="random:3")
    assert auto.objective_profile() == "random"
    assert {k: getattr(auto, k) for k in RANDOM_OBJECTIVE} == RANDOM_OBJECTIVE
    chosen = EngineConfig(weights="random:3", style_weight=1e6)  # the user set one: Gatys for the rest
    assert chosen.objective_profile() == "gatys" and chosen.pooling == "max" and chosen.style_weight == 1e6
    trained = EngineConfig(weights="imagenet")
    assert {k: getattr(trained, k) for k in GATYS_OBJECTIVE} == GATYS_OBJECTIVE
    # --fallback-weights random replaces the weights of a manifest that set no objective field.
    fallen = trained.replace(weights="random")
    assert fallen.objective_profile() == "random" and fallen.fingerprint() != trained.fingerprint()
    assert fallen.fingerprint() == EngineConfig(weights="random", **RANDOM_OBJECTIVE).fingerprint()
    assert EngineConfig.from_mapping({"weights": "random"}).pooling == "avg"


def _homogeneous_extractor() -> VGGFeatures:
    """Random VGG-19 (zero biases) without the input normalisation: features scale with the image."""
    extractor = VGGFeatures(random_state(0), ["relu1_1", "relu2_1", "relu3_1"], pooling="avg")
    extractor.mean.zero_()
    extractor.std.fill_(1.0)
    return extractor


@pytest.mark.parametrize("statistic", sorted(STATISTICS))
def test_the_normalised_objective_ignores_brightness(statistic: str) -> None:
    extractor = _homogeneous_extractor()
    layers = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
    image, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)

    def terms(brightness: float, balanced: bool) -> tuple[float, float]:
        with torch.no_grad():
            x = extractor(image * brightness)
            s = extractor(style * brightness)
            stat = get_statistic(statistic)
            targets = {k: stat.compute(s[k]) for k in layers}
            content_targets = {"relu2_1": extractor(image.flip(-1) * brightness)["relu2_1"]}
        s_norms = style_norms(targets, statistic) if balanced else None
        content_norms = target_norms(content_targets) if balanced else None
        return (float(style_loss(x, targets, layers, s_norms, statistic)[0]),
                float(content_loss(x, content_targets, content_norms)[0]))

    for balanced in (True, False):
        dim, bright = terms(0.5, balanced), terms(1.0, balanced)
        same = all(torch.isclose(torch.tensor(a), torch.tensor(b), rtol=1e-4) for a, b in zip(dim, bright))
        assert same == balanced  # unnormalised, the style term changes by 2^4 and content by 2^2


def test_a_gram_entry_is_never_served_to_the_covariance_statistic(weights_file: Path) -> None:
    extractor = VGGFeatures(random_state(7), ["relu1_1", "relu2_1"])
    style = torch.rand(1, 3, 32, 32)
    gram = compute_style_targets(extractor, [style], ["relu1_1"])
    covariance = compute_style_targets(extractor, [style], ["relu1_1"], statistic="mean_covariance")
    assert gram.statistic == "gram" and covariance.statistic == "mean_covariance"
    assert covariance.grams["relu1_1"].shape == (65, 64)  # means, then the covariance
    assert StyleTargets.from_bytes(covariance.to_bytes()).statistic == "mean_covariance"
    base = dict(style_sha256s=["aa"], blend=[1.0], side=64, layers=["relu1_1"], pooling="max", weights_identity="w")
    assert style_cache_key(**base) != style_cache_key(**base, statistic="mean_covariance")  # type: ignore[arg-type]
    config = EngineConfig(size=32, iterations=2, weights=str(weights_file), style_layers=("relu1_1",),
                          style_statistic="mean_covariance")
    content = make_image(32, 32, seed=1)
    with pytest.raises(EngineError, match="gram statistic"):
        stylize([content], [[make_image(32, 32, seed=2, kind="style")]], config, targets_for=lambda i, side: gram)
    result = stylize([content], [[make_image(32, 32, seed=2, kind="style")]], config.replace(iterations=10))
    assert result.losses[0].style > 0 and result.runs[0][0].iterations > 0


def test_init_may_be_an_image_file(weights_file: Path, tmp_path: Path) -> None:
    start = make_image(64, 48, seed=9)
    path = tmp_path / "start.png"
    save_image(start, path)
    config = EngineConfig(size=64, iterations=1, weights=str(weights_file), init=str(path))
    content = make_image(64, 48, seed=1)
    result = stylize([content], [[make_image(40, 40, seed=2, kind="style")]], config)
    # One iteration (0 is refused as pointless): the result is still next to the init image.
    def distance(a: Image.Image, b: Image.Image) -> float:
        return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).mean())
    assert distance(result.pil_images()[0], start) < 0.5 * distance(result.pil_images()[0], content)
    fingerprint = config.fingerprint()
    save_image(make_image(64, 48, seed=10), path)  # other bytes at the same path: another result
    assert EngineConfig(size=64, iterations=1, weights=str(weights_file), init=str(path)).fingerprint() != fingerprint
    missing = config.replace(init=str(tmp_path / "nope.png"))
    with pytest.raises(ImageError, match="nope.png"):
        stylize([make_image(64, 48, seed=1)], [[make_image(40, 40, seed=2, kind="style")]], missing)


def test_save_every_writes_the_current_image_every_n_iterations(weights_file: Path, tmp_path: Path) -> None:
    from nst_engine.snapshots import save_every

    seen: list[int] = []
    config = EngineConfig(size=32, iterations=6, weights=str(weights_file), tolerance=0.0)
    callback = save_every(3, tmp_path / "out.png", then=lambda event: seen.append(event.step))
    result = stylize([make_image(32, 24, seed=1)], [[make_image(32, 32, seed=2, kind="style")]], config,
                     callback=callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.scale1.iter0003.png", "out.scale1.iter0006.png"]
    assert seen == [1, 2, 3, 4, 5, 6]
    from PIL import Image

    last = Image.open(tmp_path / "out.scale1.iter0006.png").convert("RGB")
    assert last.tobytes() == result.pil_images()[0].tobytes()  # the last snapshot is the result


def test_a_written_out_objective_is_not_mistaken_for_an_auto_one() -> None:
    auto = EngineConfig(weights="imagenet")
    written = EngineConfig(weights="imagenet", **GATYS_OBJECTIVE)
    assert auto.fingerprint() == written.fingerprint() and auto != written
    assert written.replace(weights="random").objective_profile() == "gatys"
    assert "_auto" not in auto.to_dict()
