"""VGG-19 as a frozen feature extractor returning named activations.

Layer names follow the paper (conv1_1, relu1_1, ..., pool5) and are index-aligned with
torchvision's `vgg19().features`; tests/engine/test_vgg.py pins that alignment.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from nst_engine import cpu_conv
from nst_engine.errors import WeightsError

# Convolutions per block in VGG-19 (configuration "E" of Simonyan & Zisserman).
_BLOCKS = (2, 2, 4, 4, 4)
_CHANNELS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}

# torchvision's ImageNet normalisation, applied inside the extractor so callers pass [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The parameter shapes of VGG-19's `features`, keyed as in torchvision ("0.weight", ...)."""
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = 3
    for name, index in LAYER_INDEX.items():
        if name.startswith("conv"):
            out_ch = _CHANNELS[int(name[4]) - 1]
            shapes[f"{index}.weight"] = (out_ch, in_ch, 3, 3)
            shapes[f"{index}.bias"] = (out_ch,)
            in_ch = out_ch
    return shapes


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights came from; goes into every result's provenance."""

    source: str  # as the user gave it: imagenet, random:0, /path/vgg19.pth
    kind: str  # imagenet | file | random
    sha256: str | None  # of the file, when there is one
    path: str | None = None
    seed: int | None = None

    def identity(self) -> str:
        """A short string that changes whenever the weights do (keys caches)."""
        return weights_identity(self.source)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"source": self.source, "kind": self.kind, "sha256": self.sha256}
        if self.kind == "random":
            data["note"] = "seeded random weights, not a trained VGG-19: output is not a real stylization"
            data["seed"] = self.seed
        return data


class VGGFeatures(nn.Module):
    """VGG-19 `features` truncated after the deepest requested layer, frozen, in eval mode.

    forward(x) takes [B, 3, H, W] RGB in [0, 1] and returns {layer name: activation}.
    """

    def __init__(self, state: Mapping[str, torch.Tensor], layers: Iterable[str], pooling: str = "max") -> None:
        super().__init__()
        unknown = sorted(set(layers) - set(LAYER_INDEX))
        if unknown:
            raise WeightsError(f"unknown VGG-19 layer(s) {unknown}")
        self.layers = tuple(sorted(set(layers), key=LAYER_INDEX.__getitem__))
        self._wanted = frozenset(self.layers)
        last = LAYER_INDEX[self.layers[-1]]
        wanted = set(self.layers)
        modules: list[nn.Module] = []
        in_ch = 3
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("conv"):
                out_ch = _CHANNELS[int(name[4]) - 1]
                modules.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                # In place only when nobody reads the conv output it would overwrite.
                conv_name = "conv" + name[4:]
                modules.append(nn.ReLU(inplace=conv_name not in wanted))
            else:
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        own = {k: v for k, v in state.items() if int(k.split(".")[0]) <= last}
        self.features.load_state_dict(own)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.pooling = pooling
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        # Batch-invariant CPU convolutions, except for a channels_last extractor (CUDA's fast path).
        invariant = cpu_conv.applies(h) and self.features[0].weight.is_contiguous()
        for name, module in zip(LAYER_NAMES, self.features):
            h = cpu_conv.batch_invariant_conv(h, module) if invariant and name.startswith("conv") else module(h)
            if name in self._wanted:
                out[name] = h
        return out


# ---- weights ------------------------------------------------------------------------

# `random` or `random:SEED`; always fullmatch (`$` would also accept a trailing newline).
RANDOM_WEIGHTS = re.compile(r"random(?::([0-9]+))?")


def is_random_weights(weights: str) -> bool:
    """`random` or `random:SEED`: seeded random weights (every output made with them says so)."""
    return RANDOM_WEIGHTS.fullmatch(weights) is not None


def is_named_weights(weights: str) -> bool:
    """A weights source that is a name, not a file or URI: imagenet, random[:SEED]."""
    return weights == "imagenet" or is_random_weights(weights)


def load_weights(weights: str) -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """Return VGG-19 `features` parameters ("0.weight", ...) and where they came from."""
    match = RANDOM_WEIGHTS.fullmatch(weights)
    if match:
        seed = int(match.group(1) or 0)
        return random_state(seed), WeightsInfo(source=weights, kind="random", sha256=None, seed=seed)
    if weights == "imagenet":
        path = _imagenet_file()
        state = _read_state(path)
        return state, WeightsInfo(source=weights, kind="imagenet", sha256=file_sha256(path), path=str(path))
    if weights.startswith("s3://"):
        raise WeightsError(
            f"weights {weights!r}: the engine reads local files only; fetch s3:// weights with the "
            "pipeline (tasks.weights) and pass the local path"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist (expected a VGG-19 state dict .pth)")
    state = _read_state(path)
    sha = weights_identity(weights).removeprefix("sha256:")
    return state, WeightsInfo(source=weights, kind="file", sha256=sha, path=str(path.resolve()))


def weights_identity(weights: str) -> str:
    """What identifies a weights source in cache keys and fingerprints, without loading it."""
    match = RANDOM_WEIGHTS.fullmatch(weights)
    if match:
        return f"random:{int(match.group(1) or 0)}"
    if weights == "imagenet":  # torchvision checks the file against the hash in its name
        return "imagenet:" + os.path.basename(IMAGENET_URL).removesuffix(".pth")
    path = Path(weights).expanduser()
    if path.is_file():
        stat = path.stat()
        return "sha256:" + _cached_sha256(str(path.resolve()), stat.st_mtime, stat.st_size)
    return weights


@functools.lru_cache(maxsize=16)
def _cached_sha256(path: str, _mtime: float, _size: int) -> str:
    return file_sha256(Path(path))


def random_state(seed: int) -> dict[str, torch.Tensor]:
    """Seeded He-initialised VGG-19 weights (torchvision's init scheme), for tests and smoke runs."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in expected_shapes().items():
        if key.endswith(".weight"):
            fan_out = shape[0] * shape[2] * shape[3]
            std = (2.0 / fan_out) ** 0.5
            state[key] = torch.randn(shape, generator=generator) * std
        else:
            state[key] = torch.zeros(shape)
    return state


def imagenet_cache_path() -> Path:
    """Where torchvision keeps IMAGENET1K_V1 VGG-19 weights ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(IMAGENET_URL)


def _imagenet_file() -> Path:
    path = imagenet_cache_path()
    if path.is_file():
        return path
    try:  # torchvision's normal route: download into the cache when there is a network
        from torchvision.models import VGG19_Weights

        VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: not available here
        raise WeightsError(
            f"ImageNet VGG-19 weights are not in torchvision's cache ({path}) and could not be "
            f"downloaded ({type(exc).__name__}: {exc}). Copy vgg19-dcbb9e9d.pth there, or pass "
            "--weights /path/to/vgg19.pth (a torchvision VGG-19 state dict), or --weights random "
            "for an offline smoke run"
        ) from None
    return path


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt zip, pickle with code, not a torch file
        raise WeightsError(f"weights file {str(path)!r} is not a loadable torch state dict: {exc}") from None
    if not isinstance(raw, Mapping):
        raise WeightsError(f"weights file {str(path)!r} holds a {type(raw).__name__}, not a state dict")
    # Accept a whole torchvision VGG-19 ("features.0.weight", classifier ignored) or features alone.
    state = {k.removeprefix("features."): v for k, v in raw.items()
             if k.startswith("features.") or re.match(r"^\d+\.(weight|bias)$", k)}
    problems = []
    for key, shape in expected_shapes().items():
        if key not in state:
            problems.append(f"missing features.{key}")
        elif tuple(state[key].shape) != shape:
            problems.append(f"features.{key} has shape {tuple(state[key].shape)}, VGG-19 needs {shape}")
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise WeightsError(f"weights file {str(path)!r} is not a VGG-19 state dict: {shown}")
    return {k: state[k].float() for k in expected_shapes()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- extractor cache ----------------------------------------------------------------


def build_extractor(weights: str, layers: Iterable[str], pooling: str = "max",
                    device: str | torch.device = "cpu") -> tuple[VGGFeatures, WeightsInfo]:
    """A ready extractor on `device`; reused within a process (loading VGG-19 costs seconds)."""
    key_file = _file_stamp(weights)
    return _cached_extractor(weights, key_file, tuple(sorted(set(layers))), pooling, str(device))


def _file_stamp(weights: str) -> tuple[float, int] | None:
    path = Path(weights).expanduser()
    if weights == "imagenet" or RANDOM_WEIGHTS.fullmatch(weights) or not path.is_file():
        return None
    stat = path.stat()
    return (stat.st_mtime, stat.st_size)


@functools.lru_cache(maxsize=4)
def _cached_extractor(weights: str, _stamp: object, layers: tuple[str, ...], pooling: str,
                      device: str) -> tuple[VGGFeatures, WeightsInfo]:
    state, info = load_weights(weights)
    return VGGFeatures(state, layers, pooling).to(device), info
