"""Image I/O: decode safely, orient, convert to RGB, resize by max side, encode."""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from nst_engine.errors import ImageError
from nst_engine.files import write_atomic

# Decompression-bomb guard: a 20k x 20k PNG is a few kB on disk and 1.6 GB decoded.
DEFAULT_MAX_PIXELS = 64_000_000

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

# The 16 px minimum side may stretch a thin strip far past `size` (a 2x60000 image became
# 16x480000 and exhausted memory). A working image holds at most as many pixels as a square of
# `size`, or of MIN_BUDGET_SIDE at coarse scales, so ordinary shapes fit there too (16:1 at 16 px).
MIN_BUDGET_SIDE = 64

_ORIENTATION = 0x0112  # the EXIF tag
_BUFFER_REPR = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def load_image(source: str | os.PathLike[str] | bytes, *, name: str | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a path or bytes into an upright RGB image, or raise ImageError naming it."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageError(label, f"cannot read file ({exc.strerror or exc})") from None
    with decoding(label):
        image = _open(data, label, max_pixels)
        image.load()  # decode now so truncation is caught here, not later
        return to_rgb(ImageOps.exif_transpose(to_srgb(image)))


# The engine works in sRGB (VGG-19 was trained on sRGB photos, and results are written untagged).
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_MODE_OF_SPACE = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}  # an ICC colour space -> the Pillow mode it reads


def to_srgb(image: Image.Image) -> Image.Image:
    """Pixels described by an embedded ICC profile (Display P3, Adobe RGB, a CMYK press profile)
    converted to sRGB, so a wide-gamut photo is not read as if it were sRGB (its colours would
    come out dull or shifted). Untagged images, and profiles that cannot be used, stay as they are."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = _MODE_OF_SPACE.get(profile.profile.xcolor_space.strip().upper())
        if mode is None:
            return image
        source = to_rgb(image) if mode == "RGB" else image  # alpha composited first, as to_rgb would
        if source.mode != mode:
            return image  # a profile that does not describe these pixels: ignored
        converted = ImageCms.profileToProfile(source, profile, _SRGB, outputMode="RGB")
    except (OSError, ValueError, ImageCms.PyCMSError):  # an unreadable or unusable profile
        return image
    if converted is None:
        return image
    converted.info = {k: v for k, v in image.info.items() if k != "icc_profile"}
    if "exif" in image.info or image.getexif():  # keep the orientation for exif_transpose
        converted.info["exif"] = image.getexif().tobytes()
    return converted


def image_size(data: bytes, *, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Upright (width, height) read from the header alone, no pixels decoded; ImageError naming it."""
    with decoding(name), _open(data, name, max_pixels) as image:
        width, height = image.size
        if image.getexif().get(_ORIENTATION) in (5, 6, 7, 8):  # EXIF rotations by 90 degrees
            width, height = height, width
    return width, height


@contextlib.contextmanager
def decoding(name: str) -> Iterator[None]:
    """Every decode runs inside this: any decoder failure becomes an ImageError naming `name`.

    Pillow's decoders raise many types on hostile input (OSError, SyntaxError, ValueError,
    struct.error, IndexError, DecompressionBombError, "point operation not supported" for
    modes it cannot map, ...); a caller handling one image needs one type, with the file's name
    instead of Pillow's `<_io.BytesIO object at 0x...>`.
    """
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(name, "too many pixels for Pillow's decompression-bomb limit; "
                               "refusing to decode it") from None
    except UnidentifiedImageError:
        raise ImageError(name, "not a readable image (no known image format)") from None
    except (OSError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(name, f"corrupt or truncated image ({_decoder_says(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - see the docstring: any decoder failure is this image's
        raise ImageError(name, f"cannot decode it ({type(exc).__name__}: {_decoder_says(exc)})") from None


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and check the pixel count before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # a tiny file, a huge header
        raise ImageError(name, f"its header claims more than {Image.MAX_IMAGE_PIXELS} pixels, over the limit "
                               f"of {max_pixels}: refusing to decode a possible decompression bomb") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(name, f"{width}x{height}: an image needs at least one pixel")
    if width * height > max_pixels:
        raise ImageError(name, f"{width}x{height} is over the limit of {max_pixels} pixels")
    return image


def _decoder_says(exc: BaseException) -> str:
    """Pillow's message, short, with the name of our in-memory buffer taken out."""
    text = _BUFFER_REPR.sub("the data", str(exc)) or "no details"
    return text if len(text) <= 200 else text[:197] + "..."


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited onto white."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):  # point() cannot map I;16B and friends: widen to 32-bit first
        image = image.convert("I")
    if image.mode == "I":  # 16-bit grey in 32-bit storage: scale to 8 bits
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def fit_size(size: tuple[int, int], max_side: int, min_side: int = 1, *, name: str = "image") -> tuple[int, int]:
    """(width, height) scaled so the longer side is `max_side`, unless that would make the
    shorter side less than `min_side` (VGG-19 needs 16 px to reach conv5_1).

    Raises ImageError naming `name` when the minimum side would stretch it to more pixels than
    a square of `max_side` (an extreme aspect ratio): a clear error, not an allocation.
    """
    width, height = size
    scale = max(max_side / max(width, height), min_side / min(width, height))
    fitted = max(1, round(width * scale)), max(1, round(height * scale))
    budget = max(max_side, MIN_BUDGET_SIDE)
    if fitted[0] * fitted[1] > budget * budget:
        raise ImageError(name, f"{width}x{height} is too thin: keeping its short side at {min_side} px would "
                               f"make it {fitted[0]}x{fitted[1]}, more pixels than a {budget}x{budget} square "
                               "(the working size); crop it")
    return fitted


def resize_max_side(image: Image.Image, max_side: int, min_side: int = 1, *, name: str = "image") -> Image.Image:
    """Scale so the longer side is `max_side` pixels (up or down), keeping the aspect ratio."""
    size = fit_size(image.size, max_side, min_side, name=name)
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
