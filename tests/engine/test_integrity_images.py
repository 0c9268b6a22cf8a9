"""Embedded ICC profiles are honoured when decoding (converted to sRGB)."""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageCms

from nst_engine.images import load_image

# sRGB's primaries adapted to D50, as an ICC matrix profile stores them.
RED, GREEN, BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def matrix_profile(red: tuple[float, ...], green: tuple[float, ...], blue: tuple[float, ...]) -> bytes:
    """A minimal ICC v2 RGB matrix/TRC display profile (gamma 2.2) with the given primaries."""
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [(b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz(*red)), (b"gXYZ", _xyz(*green)),
            (b"bXYZ", _xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    header = (struct.pack(">I", offset + len(data)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def _png(colour: tuple[int, int, int], icc: bytes | None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, "PNG", **({"icc_profile": icc} if icc else {}))
    return buffer.getvalue()


def test_pixels_are_read_in_the_colours_their_profile_gives_them() -> None:
    swapped = matrix_profile(BLUE, GREEN, RED)  # this file's "red" channel is sRGB's blue
    assert load_image(_png((255, 0, 0), swapped)).getpixel((0, 0)) == (0, 0, 255)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert load_image(_png((200, 30, 40), srgb)).getpixel((0, 0)) == (200, 30, 40)
    assert load_image(_png((200, 30, 40), None)).getpixel((0, 0)) == (200, 30, 40)  # untagged: sRGB
    assert load_image(_png((200, 30, 40), b"not a profile")).getpixel((0, 0)) == (200, 30, 40)


def test_orientation_survives_the_conversion() -> None:
    image = Image.new("RGB", (8, 4), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), icc_profile=matrix_profile(BLUE, GREEN, RED))
    loaded = load_image(buffer.getvalue())
    assert loaded.size == (4, 8) and loaded.getpixel((1, 1))[2] > 200
