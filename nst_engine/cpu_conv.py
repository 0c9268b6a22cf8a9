"""CPU convolutions whose result for one image does not depend on the batch around it.

torch picks the CPU convolution algorithm per call: oneDNN or its own im2col kernel by batch size
and input size, and oneDNN splits the work by batch size and thread count. They round
differently (relative gradient differences of 3e-7 to 7e-7 at 64 px, torch 2.14), and L-BFGS
turns that into a visibly different picture after 100 iterations (1.2% in loss with 2 threads,
when only the algorithm choice was pinned). Running each image through its own convolution call
makes its arithmetic the same alone or in any batch, whatever the thread count. On a CPU this
costs nothing measurable: a batch of 4 was no faster per pair than 4 single runs
(benchmarks/engine_vs_baseline.py (c)). GPUs keep batched convolutions.
"""

from __future__ import annotations

import torch


def batch_invariant_conv(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """conv(x), computed image by image."""
    if x.shape[0] == 1:
        return conv(x)
    return torch.cat([conv(x[i:i + 1]) for i in range(x.shape[0])])


def applies(x: torch.Tensor) -> bool:
    # Not under autocast: there the convolutions run in bf16/fp16 (the precision setting) and
    # the same image-by-image rule would still hold, but float32 is the mode that must be exact.
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
