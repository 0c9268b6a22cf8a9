"""Precision and the CUDA fast paths, checked on the CPU (no GPU in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch
from PIL import Image

from nst_engine import EngineConfig, ProgressEvent, stylize
from nst_engine.accel import CUDA_AUTO_PRECISION, fast_paths, network_autocast, prepare, resolve_precision
from nst_engine.errors import ConfigError
from nst_engine.losses import gram_matrix
from nst_engine.vgg import VGGFeatures, load_weights, random_state

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def test_bfloat16_autocast_runs_on_the_cpu_and_lowers_the_loss(weights_file: Path, content_image: Image.Image,
                                                              style_image: Image.Image) -> None:
    events: list[ProgressEvent] = []
    config = EngineConfig(size=64, iterations=15, weights=str(weights_file), device="cpu", precision="bfloat16")
    result = stylize([content_image], [[style_image]], config, callback=events.append)
    assert len(events) == 15
    assert result.losses[0].total < events[0].losses.total / 3
    reference = stylize([content_image], [[style_image]], config.replace(precision="float32"))
    assert not torch.equal(result.images, reference.images)  # the autocast path really ran
    # Both reach the same neighbourhood; the final losses are evaluated in fp32 either way.
    assert abs(result.losses[0].total - reference.losses[0].total) < 0.5 * reference.losses[0].total


def test_autocast_runs_the_network_in_bfloat16_and_the_gram_in_float32() -> None:
    extractor = VGGFeatures(random_state(0), ["relu1_1", "relu3_1"])
    image = torch.rand(2, 3, 32, 32)
    with network_autocast(CPU, "bfloat16"):
        features = extractor(image)
        gram = gram_matrix(features["relu3_1"])
    assert features["relu3_1"].dtype == torch.bfloat16
    assert gram.dtype == torch.float32
    exact = gram_matrix(features["relu3_1"].float())
    assert torch.equal(gram, exact)  # not a bf16 product cast up afterwards
    with network_autocast(CPU, "tf32"):
        assert extractor(image)["relu1_1"].dtype == torch.float32


def test_auto_precision_is_float32_on_the_cpu_and_the_named_constant_on_cuda() -> None:
    assert resolve_precision("auto", CPU) == "float32"
    assert resolve_precision("auto", CUDA) == CUDA_AUTO_PRECISION
    assert resolve_precision("tf32", CUDA) == "tf32"
    assert EngineConfig().precision == "auto"


def test_precisions_are_checked_and_fingerprinted() -> None:
    base = EngineConfig(weights="random")
    prints = {base.replace(precision=p).fingerprint() for p in ("float32", "tf32", "bfloat16", "float16", "auto")}
    assert len(prints) == 5
    with pytest.raises(ConfigError, match="precision"):
        EngineConfig(precision="fp8")


@pytest.fixture
def cuda_flags() -> Iterator[None]:
    """prepare() sets process-wide backend flags: put them back after the test."""
    saved = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
             torch.backends.cudnn.benchmark)
    yield
    (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
     torch.backends.cudnn.benchmark) = saved


def test_prepare_for_cuda_sets_the_math_mode_and_layout(cuda_flags: None) -> None:
    # The flags and the layout change need no GPU, so the CUDA branch is checked here.
    extractor = VGGFeatures(random_state(0), ["relu2_1"])
    assert prepare(extractor, CUDA, "float32") == "float32"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"  # PyTorch's default is tf32 for convs
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cudnn.benchmark
    weight = extractor.features[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert prepare(extractor, CUDA, "auto") == CUDA_AUTO_PRECISION
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    with fast_paths(channels_last=False, cudnn_benchmark=False):
        prepare(extractor, CUDA, "tf32")
    assert extractor.features[0].weight.is_contiguous() and not torch.backends.cudnn.benchmark


def test_prepare_leaves_the_cpu_alone(cuda_flags: None) -> None:
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    extractor = VGGFeatures(random_state(0), ["relu2_1"])
    assert prepare(extractor, CPU, "auto") == "float32"
    assert extractor.features[0].weight.is_contiguous()
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"


def test_a_channels_last_extractor_optimizes_like_a_contiguous_one(weights_file: Path, content_image: Image.Image,
                                                                   style_image: Image.Image) -> None:
    # What prepare() does on CUDA, run on the CPU: NHWC weights make NHWC activations, and the
    # image's gradient must still come back contiguous for L-BFGS's .view(-1).
    config = EngineConfig(size=48, iterations=8, weights=str(weights_file), device="cpu")
    state, _ = load_weights(config.weights)
    layers = set(config.content_layers) | set(config.style_layers)
    nhwc = VGGFeatures(state, layers).to(memory_format=torch.channels_last)
    assert nhwc(torch.rand(1, 3, 32, 32))["relu1_1"].is_contiguous(memory_format=torch.channels_last)
    result = stylize([content_image], [[style_image]], config, extractor=nhwc)
    reference = stylize([content_image], [[style_image]], config, extractor=VGGFeatures(state, layers))
    # Not bitwise: NHWC and NCHW CPU kernels round differently and the Wolfe line search turns
    # that into different accepted steps (6% apart after 8 iterations, measured). What this guards
    # is that the layout runs and optimizes as well (L-BFGS needs contiguous gradients).
    assert result.losses[0].total < 1.1 * reference.losses[0].total
