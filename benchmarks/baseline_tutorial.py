"""A plain Gatys loop written the way the PyTorch neural-style tutorial teaches it.

This is the *baseline* for benchmarks/engine_vs_baseline.py, our own code following the
tutorial's pattern (not a copy of it):

* an ``nn.Sequential`` rebuilt from VGG-19's ``features``, a ``Normalization`` module first;
* ``ContentLoss`` / ``StyleLoss`` modules spliced in after the chosen layers; each stores
  ``self.loss`` during ``forward`` and passes its input through unchanged;
* ``nn.ReLU(inplace=False)`` (an in-place ReLU would overwrite what the loss modules saw);
* the model trimmed after the last loss module;
* ``optim.LBFGS([input_img])`` with the library defaults (lr 1, max_iter 20, history 100),
  driven by a closure that clamps ``input_img`` to [0, 1], zeroes the gradient, runs the
  model, sums the stored losses, back-propagates and counts its runs;
* ``while run[0] < num_steps: optimizer.step(closure)``.

One deliberate difference: the tutorial loops ``while run[0] <= num_steps``, which with
max_iter=20 overshoots (300 asked -> 320 evaluations). Here the loop stops at ``< num_steps``
so 300 asked is exactly 300 objective evaluations (15 calls x 20); `run_style_transfer`
returns the count actually made, which the benchmark reports.

The objective is nst_engine's default one: content = MSE of relu4_2 features; style = sum
over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (weight 1 each) of the MSE between Gram
matrices F F^T / (C*H*W); total = 1 * content + 1e6 * style.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nst_engine.vgg import IMAGENET_MEAN, IMAGENET_STD, LAYER_NAMES

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def vgg19_features(state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> nn.Sequential:
    """torchvision's ``vgg19().features`` holding `state` ("0.weight", ... as nst_engine.vgg.load_weights
    returns them), frozen, in eval mode: the `cnn` the tutorial starts from."""
    from torchvision.models import vgg19

    cnn = vgg19(weights=None).features
    cnn.load_state_dict(state)
    return cnn.to(device).eval().requires_grad_(False)


class Normalization(nn.Module):
    """ImageNet mean/std normalisation as the first module, so the image stays in [0, 1]."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


def gram_matrix(activations: torch.Tensor) -> torch.Tensor:
    """[B=1, C, H, W] -> [C, C] Gram matrix, normalised by the number of elements (C*H*W)."""
    b, c, h, w = activations.size()
    flat = activations.view(b * c, h * w)
    return torch.mm(flat, flat.t()).div(b * c * h * w)


class ContentLoss(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()  # a constant, not part of the graph
        self.loss = torch.tensor(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    def __init__(self, target_activations: torch.Tensor) -> None:
        super().__init__()
        self.target = gram_matrix(target_activations).detach()
        self.loss = torch.tensor(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(gram_matrix(x), self.target)
        return x


def get_style_model_and_losses(cnn: nn.Sequential, style_img: torch.Tensor, content_img: torch.Tensor,
                               content_layers: Sequence[str] = CONTENT_LAYERS,
                               style_layers: Sequence[str] = STYLE_LAYERS,
                               ) -> tuple[nn.Sequential, list[StyleLoss], list[ContentLoss]]:
    """VGG's layers copied into a new Sequential with loss modules after the named layers."""
    normalization = Normalization().to(content_img.device)
    model = nn.Sequential(normalization)
    content_losses: list[ContentLoss] = []
    style_losses: list[StyleLoss] = []
    for name, layer in zip(LAYER_NAMES, cnn.children()):
        if isinstance(layer, nn.ReLU):
            layer = nn.ReLU(inplace=False)
        model.add_module(name, layer)
        if name in content_layers:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module(f"content_loss_{name}", content_loss)
            content_losses.append(content_loss)
        if name in style_layers:
            target_activations = model(style_img).detach()
            style_loss = StyleLoss(target_activations)
            model.add_module(f"style_loss_{name}", style_loss)
            style_losses.append(style_loss)
    # Drop the layers after the last loss module: nothing reads them.
    for last in range(len(model) - 1, -1, -1):
        if isinstance(model[last], (ContentLoss, StyleLoss)):
            break
    model = model[: last + 1]
    return model, style_losses, content_losses


def run_style_transfer(cnn: nn.Sequential, content_img: torch.Tensor, style_img: torch.Tensor,
                       input_img: torch.Tensor, num_steps: int = 300, style_weight: float = 1e6,
                       content_weight: float = 1.0,
                       on_eval: Callable[[int, float], None] | None = None,
                       stats: dict[str, int] | None = None) -> tuple[torch.Tensor, int]:
    """Optimise `input_img` (modified in place) for `num_steps` objective evaluations.

    Returns (the clamped image, the number of evaluations made). `on_eval(run, loss)` is called
    at the end of every closure call, with the loss of the image that was evaluated. `stats`,
    if given, gets "step_calls": how many optimizer.step() calls that took (num_steps / 20
    unless L-BFGS's tolerances cut a call short) and "curvature_pairs": how many (s, y) pairs
    L-BFGS holds at the end (at most its history, 100; torch drops pairs with y.s <= 1e-10,
    and with none it takes plain gradient steps of length lr, which on a tiny loss stall).
    """
    model, style_losses, content_losses = get_style_model_and_losses(cnn, style_img, content_img)
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = torch.optim.LBFGS([input_img])

    run = [0]
    while run[0] < num_steps:

        def closure() -> torch.Tensor:
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = sum(sl.loss for sl in style_losses) * style_weight
            content_score = sum(cl.loss for cl in content_losses) * content_weight
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            if on_eval is not None:
                on_eval(run[0], loss.item())
            return loss

        optimizer.step(closure)
        if stats is not None:
            stats["step_calls"] = stats.get("step_calls", 0) + 1

    with torch.no_grad():
        input_img.clamp_(0, 1)
    if stats is not None:
        stats["curvature_pairs"] = len(optimizer.state[input_img].get("old_dirs", []))
    return input_img.detach(), run[0]


@torch.no_grad()
def total_loss(cnn: nn.Sequential, image: torch.Tensor, content_img: torch.Tensor, style_img: torch.Tensor,
               style_weight: float = 1e6, content_weight: float = 1.0) -> dict[str, float]:
    """The objective of `image` (content, style, total), computed with the same spliced model."""
    model, style_losses, content_losses = get_style_model_and_losses(cnn, style_img, content_img)
    model(image)
    content = float(sum(cl.loss for cl in content_losses))
    style = float(sum(sl.loss for sl in style_losses))
    return {"content": content, "style": style, "total": content_weight * content + style_weight * style}


def timed_run(cnn: nn.Sequential, content_img: torch.Tensor, style_img: torch.Tensor, num_steps: int,
              on_eval: Callable[[int, float], None] | None = None,
              stats: dict[str, int] | None = None, style_weight: float = 1e6,
              content_weight: float = 1.0) -> tuple[torch.Tensor, int, float]:
    """(image, evaluations, wall seconds) for a whole run started from the content image,
    model building (style/content targets) included, as the tutorial's script would spend it."""
    start = time.perf_counter()
    image, runs = run_style_transfer(cnn, content_img, style_img, content_img.clone(), num_steps,
                                     style_weight=style_weight, content_weight=content_weight,
                                     on_eval=on_eval, stats=stats)
    if image.device.type == "cuda":
        torch.cuda.synchronize()
    return image, runs, time.perf_counter() - start
