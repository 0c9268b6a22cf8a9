"""How many bytes one image needs while it is optimized, and the batch size that fits a budget.

The estimate counts tensor bytes, the quantity `torch.cuda.max_memory_allocated` reports: what
autograd saves for the backward pass through the truncated VGG-19 (read off its graph: each
convolution saves its input, each in-place ReLU its output, each max-pool its input and int64
indices), the gradients alive at the backward pass's worst moment, the L-BFGS history
(`history x 2` flat vectors of the image's 3*H*W pixels), the images and the targets. It
models the engine as written: tests/engine/test_memory_model.py checks it against the peak
measured on the CPU, and benchmarks/gpu_throughput.py prints it beside the GPU's peak.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from nst_engine import accel
from nst_engine.config import EngineConfig
from nst_engine.errors import EngineError
from nst_engine.vgg import LAYER_INDEX, LAYER_NAMES, expected_shapes

log = logging.getLogger(__name__)

FP32 = 4
INDEX = 8  # max-pool indices are int64

# Kept free on CUDA besides the estimate: cuDNN workspaces (cudnn.benchmark tries algorithms
# with large ones), allocator fragmentation and the CUDA context's own growth. A guess until
# benchmarks/gpu_throughput.py compares the estimate with the measured peak on a GPU.
CUDA_HEADROOM_FRACTION = 0.10
CUDA_WORKSPACE_BYTES = 1 << 30

# Of MemAvailable, the share the CPU plans may fill. The estimate is not the whole process: the
# style and content targets of every scale, malloc's caches and fragmentation, and whatever else
# runs beside it. Measured: planning against all of it, a 4096 px run chose 2848 px blocks
# estimated at 22.7 of 23 GiB available and was OOM-killed at 22.9 GiB resident.
CPU_MEMAVAILABLE_FRACTION = 0.5

# The L-BFGS history holds 2 x pairs x 3 x H x W floats: 100 pairs of a 4096 px square are 40 GB.
# Pairs x pixels is capped at what 100 pairs cost at 1024 x 1024 (2.5 GB), so every size up to
# that keeps lbfgs_history as set (results unchanged); larger images keep fewer, down to
# MIN_LBFGS_HISTORY (10 reached the same loss as 100 at print sizes in the research the
# block-wise evaluation comes from, docs/print-sizes.md).
LBFGS_HISTORY_VALUES = 100 * 1024 * 1024
MIN_LBFGS_HISTORY = 10


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one image at one size, by what holds them, plus what a batch shares."""

    activations: int  # network activations saved for backward, and the backward's live gradients
    lbfgs: int  # the L-BFGS curvature pairs and its working vectors
    images: int  # the image being optimized, its gradient, the content image and its copies
    targets: int  # content features and style Grams
    shared: int  # once per batch: the autocast copy of the weights (the fp32 weights are not counted)

    @property
    def per_image(self) -> int:
        return self.activations + self.lbfgs + self.images + self.targets

    def batch_bytes(self, batch: int) -> int:
        return self.shared + batch * self.per_image


def estimate(height: int, width: int, config: EngineConfig, device: torch.device | str = "cpu") -> MemoryEstimate:
    """Peak bytes of one image of `height` x `width` (the final scale, the largest) under `config`."""
    device = torch.device(device)
    precision = accel.resolve_precision(config.precision, device)
    autocast = precision in accel.AUTOCAST_DTYPES
    act = accel.activation_bytes(precision)
    channels_last = device.type == "cuda" and accel.current_fast_paths().channels_last
    wanted = set(config.content_layers) | set(config.style_layers)
    pixels = 3 * height * width
    steps = config.iterations_per_scale()[-1]
    pairs = min(lbfgs_history(config, height, width), max(steps - 1, 0))
    # flat_grad, prev_flat_grad, the direction d and q are alive while L-BFGS evaluates the loss.
    lbfgs = (2 * pairs + 4) * pixels * FP32 if config.optimizer == "lbfgs" else 2 * pixels * FP32  # Adam: m, v
    # x, x.grad, the content image, and the first x, which optimize() holds while a scale runs.
    images = 4 * pixels * FP32
    shapes = layer_shapes(height, width, max(LAYER_INDEX[name] for name in wanted))
    # optimize() keeps the content image's whole feature dict (fp32, no autocast) for the scale,
    # not only the content layers it needs: dropping it would save this much.
    content_features = sum(_numel(shapes[name]) for name in wanted) * FP32
    grams = sum(shapes[name][0] ** 2 for name in config.style_layers) * FP32
    targets = content_features + 2 * grams  # the provider's StyleTargets and their stacked copy
    style_copy = autocast or channels_last  # the Gram reads an fp32 NCHW copy, which bmm saves
    activations = _activation_peak(shapes, wanted, config.style_layers, act, autocast, style_copy, pixels,
                                   max_pool=config.pooling == "max")
    last = max(LAYER_INDEX[name] for name in wanted)
    weights = [math.prod(shape) for key, shape in expected_shapes().items()
               if key.endswith(".weight") and int(key.split(".")[0]) <= last]
    shared = 0
    if autocast:  # conv nodes save the bf16/fp16 weight copies autocast made, until backward
        shared += sum(weights) * act
    if device.type == "cpu":
        # The CPU's convolution_backward allocates a buffer the size of the layer's weight: the
        # profiler showed 9,437,184 bytes (512*512*3*3*4) allocated at the measured peak.
        shared += max(weights) * act
    return MemoryEstimate(activations, lbfgs, images, targets, shared)


def lbfgs_history(config: EngineConfig, height: int, width: int) -> int:
    """The curvature pairs L-BFGS keeps for an image of height x width: lbfgs_history, fewer at print sizes."""
    fits = LBFGS_HISTORY_VALUES // (height * width)
    return min(config.lbfgs_history, max(MIN_LBFGS_HISTORY, fits))


def blocked_estimate(height: int, width: int, block: int, config: EngineConfig,
                     device: torch.device | str = "cpu") -> MemoryEstimate:
    """Peak bytes of one image evaluated in blocks of `block` px (nst_engine.blockwise): the
    network's activations are one crop's (the block and its margins); the optimizer state, the
    images and the targets stay whole, plus the gradient blocks add into."""
    whole = estimate(height, width, config, device)
    crop = estimate(min(height, block + 2 * config.block_margin), min(width, block + 2 * config.block_margin),
                    config, device)
    # Targets: the content layers' whole feature maps (blocked runs keep no others) and the style statistics.
    shapes = layer_shapes(height, width, max(LAYER_INDEX[name] for name in (*config.content_layers, *config.style_layers)))
    targets = (sum(_numel(shapes[name]) for name in config.content_layers)
               + 2 * sum(shapes[name][0] ** 2 for name in config.style_layers)) * FP32
    return MemoryEstimate(crop.activations + crop.images, whole.lbfgs, whole.images + 3 * height * width * FP32,
                          targets, whole.shared)


def plan_block(height: int, width: int, config: EngineConfig, device: torch.device | str,
               budget: int | None = None, batch: int = 1) -> int:
    """Block side for `batch` images of height x width: 0 when the whole image fits the free
    memory (and `budget`), else the largest multiple of 16 whose blocked estimate fits.

    When not even 16 px blocks fit (what is left is the whole-size state), 0 as well: the
    engine tries the whole image, and a device that runs out says so (nst_engine.batching)."""
    device = torch.device(device)
    usable = _usable(device, budget)
    if estimate(height, width, config, device).batch_bytes(batch) <= usable:
        return 0
    for block in range((max(height, width) - 1) // 16 * 16, 15, -16):
        if blocked_estimate(height, width, block, config, device).batch_bytes(batch) <= usable:
            return block
    smallest = blocked_estimate(height, width, 16, config, device)
    log.warning("%dx%d needs %.1f GiB even in 16 px blocks (L-BFGS history %.1f GiB), %.1f GiB usable: "
                "trying the whole image", width, height, smallest.batch_bytes(batch) / 2**30,
                smallest.lbfgs / 2**30, usable / 2**30)
    return 0


def _usable(device: torch.device, budget: int | None) -> int:
    usable = available_bytes(device, budget)
    if device.type == "cuda":
        usable = int(usable * (1 - CUDA_HEADROOM_FRACTION)) - CUDA_WORKSPACE_BYTES
    return usable


def layer_shapes(height: int, width: int, last: int) -> dict[str, tuple[int, int, int]]:
    """(channels, height, width) of every VGG-19 layer's output up to index `last`."""
    shapes: dict[str, tuple[int, int, int]] = {}
    channels = 3
    for name in LAYER_NAMES[: last + 1]:
        if name.startswith("conv"):
            channels = (64, 128, 256, 512, 512)[int(name[4]) - 1]
        elif name.startswith("pool"):
            height, width = height // 2, width // 2
        shapes[name] = (channels, height, width)
    return shapes


def _numel(shape: tuple[int, int, int]) -> int:
    return shape[0] * shape[1] * shape[2]


def _activation_peak(shapes: dict[str, tuple[int, int, int]], wanted: set[str], style_layers: tuple[str, ...],
                     act: int, autocast: bool, style_copy: bool, pixels: int, *, max_pool: bool) -> int:
    """Walk the network forward (saved tensors) then backward (gradients), return the worst moment.

    A saved tensor is freed once backward has passed the earliest node that saved it.
    """
    names = list(shapes)
    saved: list[tuple[int, int]] = []  # (bytes, index of the layer whose backward frees it)
    # The first convolution saves its input: the normalised image (fp32), or its autocast copy.
    saved.append((pixels * (act if autocast else FP32), 0))
    for index, name in enumerate(names):
        size = _numel(shapes[name])
        if name.startswith("conv"):
            relu_in_place = name.replace("conv", "relu") not in wanted and name not in wanted
            # In place, the ReLU overwrites this output and saves it; the next layer saves it too.
            saved.append((size * act, index + 1 if relu_in_place else index))
        elif name.startswith("relu") and name.replace("relu", "conv") in wanted:
            saved.append((size * act, index))  # not in place: a second tensor
        elif name.startswith("pool"):
            if max_pool:
                saved.append((size * INDEX, index))
            saved.append((size * act, index + 1))  # the pooled output, saved by the next conv
    live = sum(b for b, _ in saved)
    style_fp32 = sum(_numel(shapes[name]) for name in style_layers) * FP32 if style_copy else 0
    forward_peak = live + style_fp32
    # Backward, first the Grams (made last, so their nodes run first), in reverse: each bmm
    # backward makes fp32 gradients of its feature map and frees its fp32 copy; the gradient,
    # cast back to the network's precision, waits for the network's backward. Two fp32
    # gradients at once when the Gram read a copy, one when it read the feature map itself:
    # what fits the peaks measured on the CPU (tests/engine/test_memory_model.py).
    peak = forward_peak
    copies = {name: _numel(shapes[name]) * FP32 for name in style_layers} if style_copy else {}
    pending: dict[str, int] = {}
    for name in reversed(style_layers):
        size = _numel(shapes[name])
        gradients = (2 * size * FP32 + size * act) if style_copy else size * FP32
        peak = max(peak, live + sum(copies.values()) + sum(pending.values()) + gradients)
        copies.pop(name, None)
        pending[name] = size * act
    for index in range(len(names) - 1, -1, -1):
        name = names[index]
        out_bytes = _numel(shapes[name]) * act
        in_bytes = (_numel(shapes[names[index - 1]]) if index else pixels) * act
        pending.pop(name, None)  # accumulated into this layer's incoming gradient
        peak = max(peak, live + sum(pending.values()) + out_bytes + in_bytes)
        live -= sum(b for b, free_at in saved if free_at == index)
    return peak


def available_bytes(device: torch.device | str, budget: int | None = None) -> int:
    """Memory this process may still fill on `device`: free memory, capped by `budget` if given.

    On CUDA, free memory counts what the caching allocator reserved but does not use; the
    budget (`--gpu-memory`) caps the total this process allocates. On the CPU, a share of
    MemAvailable (CPU_MEMAVAILABLE_FRACTION).
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        free += torch.cuda.memory_reserved(device) - allocated
        return free if budget is None else min(free, budget - allocated)
    free = int(_mem_available() * CPU_MEMAVAILABLE_FRACTION)
    return free if budget is None else min(free, budget)


def choose_batch_size(height: int, width: int, config: EngineConfig, device: torch.device | str,
                      budget: int | None = None, limit: int | None = None) -> int:
    """The largest batch whose estimate fits the free memory (and `budget`), at least 1, at most `limit`."""
    device = torch.device(device)
    usable = _usable(device, budget)
    found = estimate(height, width, config, device)
    if config.block_size and config.block_size < max(height, width):  # blocks chosen by the user
        found = blocked_estimate(height, width, config.block_size, config, device)
    batch = max(1, (usable - found.shared) // found.per_image)
    return batch if limit is None else max(1, min(batch, limit))


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_bytes(text: str, *, name: str = "gpu-memory") -> int:
    """'24GiB', '24G', '1.5e10', '512MiB' -> bytes; a clear error naming `name` otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in _UNITS:
        raise EngineError(f"{name}: expected a size like 24GiB, 24G or 512MiB, got {text!r}")
    value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise EngineError(f"{name}: must be more than 0 bytes, got {text!r}")
    return value


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30  # not Linux: assume a modest machine rather than fail
