"""Real hostile image files for hardening tests, written byte by byte (not through Pillow's
encoders, so the files are what another program would hand us)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from tests.conftest import make_image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb_png(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: ~110 kB on disk for 30000 (900 M pixels)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte, then the packed bits
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def tiff16_big_endian(values: np.ndarray) -> bytes:
    """An uncompressed 16-bit greyscale TIFF in Motorola (big-endian) byte order."""
    height, width = values.shape
    pixels = values.astype(">u2").tobytes()
    short, long = 3, 4
    entries = [(256, short, width), (257, short, height), (258, short, 16), (259, short, 1),  # no compression
               (262, short, 1), (273, long, 8), (277, short, 1), (278, short, height),  # 1 = black is zero
               (279, long, len(pixels))]
    out = b"MM\x00\x2a" + struct.pack(">I", 8 + len(pixels)) + pixels + struct.pack(">H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack(">HH", value, 0) if kind == short else struct.pack(">I", value)
        out += struct.pack(">HHI", tag, kind, 1) + packed
    return out + b"\x00\x00\x00\x00"  # no next IFD


def grey_ramp(width: int, height: int) -> np.ndarray:
    """16-bit values spanning the whole range, so a wrong byte order or scale shows."""
    return np.linspace(0, 65535, width * height).round().astype(np.uint16).reshape(height, width)


def truncated_jpeg(width: int, height: int) -> bytes:
    """A JPEG whose header is whole (its size reads fine) but whose pixel data stops early."""
    buffer = io.BytesIO()
    make_image(width, height, seed=5).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[:data.index(b"\xff\xda") + 40]  # start of scan, then a few bytes of it


def thin_strip_png(width: int = 2, height: int = 60000) -> bytes:
    buffer = io.BytesIO()
    make_image(width, height, seed=6).save(buffer, "PNG")
    return buffer.getvalue()
