from pathlib import Path

import pytest
import torch

from nst_engine import EngineConfig, StyleTargets, compute_style_targets
from nst_engine.errors import ConfigError, EngineError
from nst_engine.losses import gram_matrix
from nst_engine.vgg import VGGFeatures, random_state


def test_style_targets_round_trip_without_pickle(tmp_path: Path) -> None:
    targets = StyleTargets({"relu1_1": torch.rand(64, 64)}, {"size": "64"})
    path = tmp_path / "t.pt"
    targets.save(path)
    loaded = StyleTargets.load(path)
    assert torch.equal(loaded.grams["relu1_1"], targets.grams["relu1_1"]) and loaded.meta == {"size": "64"}
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(EngineError, match="not a valid StyleTargets"):
        StyleTargets.load(path)


def test_blend_is_the_weighted_mean_of_grams() -> None:
    extractor = VGGFeatures(random_state(0), ["relu1_1"])
    a, b = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 32, 32)
    blended = compute_style_targets(extractor, [a, b], ["relu1_1"], blend=[3, 1]).grams["relu1_1"]
    with torch.no_grad():
        ga, gb = (gram_matrix(extractor(x)["relu1_1"])[0] for x in (a, b))
    assert torch.allclose(blended, 0.75 * ga + 0.25 * gb, atol=1e-6)


def test_fingerprint_is_stable_and_tracks_output_changing_settings() -> None:
    base = EngineConfig(weights="random")
    assert base.fingerprint() == EngineConfig(weights="random").fingerprint()
    assert base.fingerprint() != base.replace(style_weight=1e3).fingerprint()
    assert base.fingerprint() == base.replace(device="cpu").fingerprint()  # device does not change pixels


def test_from_mapping_reports_each_bad_field() -> None:
    config = EngineConfig.from_mapping({"size": 128, "style_weight": "1e3", "scales": [0.5, 1]})
    assert (config.size, config.style_weight, config.scales) == (128, 1000.0, (0.5, 1.0))
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_mapping({"size": "big", "colour": 1, "preserve_colors": "yes"}, where="pairs[1].engine")
    fields = [field for field, _ in info.value.problems]
    assert fields == ["pairs[1].engine.size", "pairs[1].engine.colour", "pairs[1].engine.preserve_colors"]
