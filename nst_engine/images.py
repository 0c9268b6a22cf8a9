"""Image I/O: decode safely, orient, convert to RGB, resize by max side, encode."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from nst_engine.errors import ImageError

# Decompression-bomb guard: a 20k x 20k PNG is a few kB on disk and 1.6 GB decoded.
DEFAULT_MAX_PIXELS = 64_000_000

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def load_image(source: str | os.PathLike[str] | bytes, *, name: str | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a path or bytes into an upright RGB image, or raise ImageError naming it."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageError(label, f"cannot read file ({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(label, f"{width}x{height} is over the limit of {max_pixels} pixels")
            image.load()  # decode now so truncation is caught here, not later
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(label, f"not a readable image ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageError(label, f"corrupt or truncated image ({exc})") from None
    return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def fit_size(size: tuple[int, int], max_side: int, min_side: int = 1) -> tuple[int, int]:
    """(width, height) scaled so the longer side is `max_side`, unless that would make the
    shorter side less than `min_side` (VGG-19 needs 16 px to reach conv5_1)."""
    width, height = size
    scale = max(max_side / max(width, height), min_side / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_max_side(image: Image.Image, max_side: int, min_side: int = 1) -> Image.Image:
    """Scale so the longer side is `max_side` pixels (up or down), keeping the aspect ratio."""
    size = fit_size(image.size, max_side, min_side)
    if size == image.size:
        return image
    shrinking = size[0] < image.size[0]
    return image.resize(size, Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC)


def thumbnail(image: Image.Image, max_side: int = 192) -> Image.Image:
    """A small copy for galleries (never enlarged)."""
    copy = image.copy()
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return copy


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> [1, 3, H, W] float32 in [0, 1]."""
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return (data.view(image.height, image.width, 3).permute(2, 0, 1).unsqueeze(0).float() / 255).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """[3, H, W] or [1, 3, H, W] in [0, 1] -> RGB PIL image (rounded, clamped)."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    array = (tensor.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu()
    return Image.fromarray(array.contiguous().numpy(), "RGB")


def encode_image(image: Image.Image, fmt: str = "PNG", quality: int = 95) -> bytes:
    """Encode to PNG, JPEG or WEBP bytes."""
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def format_for(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageError(str(path), f"unknown image extension {suffix!r}; use one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def save_image(image: Image.Image, path: str | os.PathLike[str], quality: int = 95) -> None:
    """Write atomically (temp file, then rename): a crash never leaves half an image."""
    write_atomic(Path(path), encode_image(image, format_for(path), quality))


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
