"""Fast paths for the optimizer on CUDA: what each `precision` means, and the extractor's layout.

A precision names the arithmetic of the network's forward and backward passes:

- ``float32``: IEEE fp32 throughout. On CUDA this turns TF32 *off* for convolutions and
  matmuls: PyTorch's own default runs cuDNN convolutions in TF32
  (``torch.backends.cudnn.conv.fp32_precision == "tf32"`` out of the box), so before this module
  "float32" on an Ampere or newer GPU silently meant TF32 convolutions.
- ``tf32``: fp32 tensors, TF32 tensor-core math in convolutions and matmuls. On the CPU it is
  plain fp32.
- ``bfloat16`` / ``float16``: the network runs under autocast; the Gram matrices, statistics and
  losses stay in fp32 (the objective casts features to float32 before the Gram). Any fp32
  convolution or matmul left runs in TF32.
- ``auto``: `CUDA_AUTO_PRECISION` on CUDA, ``float32`` anywhere else.

`prepare` applies a precision's backend flags, ``cudnn.benchmark`` and ``channels_last`` once per
optimization; `network_autocast` wraps each forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

# NOT YET MEASURED: no GPU was lent to the session that wrote this. The rule is "the
# fastest precision whose final loss stays within 1% of float32"; bfloat16 is the expected winner
# (tensor cores at twice TF32's rate, fp32 range so no loss scaling). Confirm or change it with
# `python -m benchmarks.gpu_throughput` on a GPU: its table names the precision that meets the rule.
CUDA_AUTO_PRECISION = "bfloat16"
CPU_AUTO_PRECISION = "float32"  # CPU autocast is not a speed-up on most CPUs; keep the reference math

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class FastPaths:
    """Layout and kernel-selection switches on CUDA; on by default, off only to measure them."""

    channels_last: bool = True  # NHWC activations: what tensor-core convolutions want
    cudnn_benchmark: bool = True  # time cuDNN's algorithms once per shape; shapes repeat 500 times


_FAST_PATHS: ContextVar[FastPaths] = ContextVar("nst_fast_paths", default=FastPaths())


@contextlib.contextmanager
def fast_paths(**changes: bool) -> Iterator[FastPaths]:
    """Within the block, `prepare` uses these switches (benchmarks turn one off to measure it)."""
    paths = dataclasses.replace(_FAST_PATHS.get(), **changes)
    token = _FAST_PATHS.set(paths)
    try:
        yield paths
    finally:
        _FAST_PATHS.reset(token)


def current_fast_paths() -> FastPaths:
    return _FAST_PATHS.get()


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision `auto` stands for on `device`; any other name is returned unchanged."""
    if precision != "auto":
        return precision
    return CUDA_AUTO_PRECISION if device.type == "cuda" else CPU_AUTO_PRECISION


def fp32_math(precision: str) -> str:
    """cuDNN/cuBLAS fp32 mode for a resolved precision: "ieee" only for strict float32."""
    return "ieee" if precision == "float32" else "tf32"


def prepare(extractor: nn.Module, device: torch.device, precision: str) -> str:
    """Set the CUDA backend flags for `precision` and lay the extractor out for it.

    Returns the resolved precision (what `auto` became), for provenance. The flags are
    process-wide, so they are set on every call: a float32 run after a tf32 run gets IEEE math
    back. On the CPU nothing changes.
    """
    resolved = resolve_precision(precision, device)
    if device.type != "cuda":
        return resolved
    paths = current_fast_paths()
    mode = fp32_math(resolved)
    torch.backends.cuda.matmul.fp32_precision = mode  # the new API only: mixing it with
    torch.backends.cudnn.conv.fp32_precision = mode  # allow_tf32 makes torch raise on reads
    torch.backends.cudnn.benchmark = paths.cudnn_benchmark
    # Weights in channels_last make each convolution pick NHWC kernels and turn its input NHWC,
    # so the activations follow without converting the image: the image stays NCHW-contiguous,
    # which L-BFGS needs (it flattens gradients with .view(-1)).
    layout = torch.channels_last if paths.channels_last else torch.contiguous_format
    extractor.to(memory_format=layout)
    return resolved


def network_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The context for a forward pass through the network at `precision` (none for fp32/tf32)."""
    dtype = AUTOCAST_DTYPES.get(resolve_precision(precision, device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def activation_bytes(precision: str) -> int:
    """Bytes per activation element the network stores at a resolved precision."""
    return 2 if precision in AUTOCAST_DTYPES else 4
