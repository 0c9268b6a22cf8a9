from pathlib import Path

import pytest
import torch
import torchvision

from nst_engine.errors import WeightsError
from nst_engine.vgg import LAYER_INDEX, LAYER_NAMES, VGGFeatures, load_weights, random_state


def test_every_layer_name_is_pinned_to_torchvision_index() -> None:
    reference = torchvision.models.vgg19(weights=None).features
    assert len(LAYER_NAMES) == len(reference) == 37
    kinds = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}
    for index, module in enumerate(reference):
        assert isinstance(module, kinds[LAYER_NAMES[index][:4]]), LAYER_NAMES[index]
    # The known pitfalls of hand counting: conv4_2 is index 21, relu5_1 is 29.
    assert (LAYER_INDEX["conv4_2"], LAYER_INDEX["relu4_2"], LAYER_INDEX["relu5_1"]) == (21, 22, 29)

    state = random_state(3)
    reference.load_state_dict(state)
    reference.eval()
    extractor = VGGFeatures(state, LAYER_NAMES)
    x = torch.rand(1, 3, 40, 40)
    normalised = (x - extractor.mean) / extractor.std
    ours = extractor(x)
    h = normalised
    with torch.no_grad():
        for index, module in enumerate(reference):
            h = module(h.clone())
            assert torch.allclose(ours[LAYER_NAMES[index]], h, atol=1e-5), LAYER_NAMES[index]


def test_extractor_is_truncated_frozen_and_in_eval_mode() -> None:
    extractor = VGGFeatures(random_state(0), ["relu1_1", "relu3_1"])
    assert len(extractor.features) == LAYER_INDEX["relu3_1"] + 1
    assert not extractor.training
    assert all(not p.requires_grad for p in extractor.parameters())
    assert set(extractor(torch.rand(2, 3, 32, 32))) == {"relu1_1", "relu3_1"}


def test_avg_pooling_replaces_max_pooling() -> None:
    extractor = VGGFeatures(random_state(0), ["relu3_1"], pooling="avg")
    pools = [m for m in extractor.features if "Pool" in type(m).__name__]
    assert pools and all(isinstance(m, torch.nn.AvgPool2d) for m in pools)


def test_weights_file_round_trip(weights_file: Path) -> None:
    state, info = load_weights(str(weights_file))
    expected = random_state(7)
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert info.kind == "file" and info.sha256 and len(info.sha256) == 64


def test_random_weights_are_seeded_and_say_so() -> None:
    a, info = load_weights("random:5")
    b, _ = load_weights("random:5")
    c, _ = load_weights("random:6")
    assert torch.equal(a["0.weight"], b["0.weight"]) and not torch.equal(a["0.weight"], c["0.weight"])
    assert info.kind == "random" and "not a trained" in info.to_dict()["note"]


def test_wrong_file_gives_clear_error(tmp_path: Path) -> None:
    bad_shapes = tmp_path / "resnet.pth"
    state = random_state(0)
    state["0.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, bad_shapes)
    with pytest.raises(WeightsError, match=r"resnet\.pth.*features\.0\.weight has shape \(32, 3, 3, 3\)"):
        load_weights(str(bad_shapes))
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("hello")
    with pytest.raises(WeightsError, match="notes.pth.*not a loadable"):
        load_weights(str(not_torch))
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(str(tmp_path / "missing.pth"))


def test_imagenet_without_cache_or_network_says_how_to_supply_a_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # make sure no download can succeed
    with pytest.raises(WeightsError, match=r"--weights /path/to/vgg19.pth"):
        load_weights("imagenet")
