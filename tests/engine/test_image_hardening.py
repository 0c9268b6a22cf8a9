"""Hostile and odd image files: every decoder failure is one ImageError naming the file, thin
strips are refused before any allocation, and written files honour the umask."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from nst_engine.errors import ImageError
from nst_engine.files import write_atomic
from nst_engine.images import decoding, fit_size, image_size, load_image
from tests.hostile_images import decompression_bomb_png, grey_ramp, thin_strip_png, tiff16_big_endian, truncated_jpeg


@pytest.mark.parametrize("read", [image_size, load_image])
def test_decompression_bomb_is_refused_from_its_header_naming_the_file(read) -> None:
    data = decompression_bomb_png(30000)
    assert len(data) < 200_000  # a tiny file claiming 900 million pixels
    with pytest.raises(ImageError) as info:
        read(data, name="photos/bomb.png")
    assert info.value.name == "photos/bomb.png"
    assert str(info.value).startswith("photos/bomb.png: ") and "decompression bomb" in info.value.reason
    assert "BytesIO" not in str(info.value)


def test_sixteen_bit_big_endian_tiff_becomes_the_right_greys() -> None:
    ramp = grey_ramp(40, 30)
    data = tiff16_big_endian(ramp)
    assert image_size(data, name="scan.tif") == (40, 30)
    image = load_image(data, name="scan.tif")
    assert image.mode == "RGB" and image.size == (40, 30)
    pixels = np.asarray(image)
    assert (pixels[..., 0] == pixels[..., 2]).all()  # grey stays grey
    expected = ramp.astype(np.int64) // 256  # the top 8 bits: a byte-order mix-up would scramble these
    assert np.abs(pixels[..., 0].astype(np.int64) - expected).max() <= 1
    assert pixels[0, 0, 0] == 0 and pixels[-1, -1, 0] == 255


def test_truncated_jpeg_reads_its_size_but_decoding_names_the_file() -> None:
    data = truncated_jpeg(40, 30)
    assert image_size(data, name="cut.jpg") == (40, 30)  # planning sees a whole header
    with pytest.raises(ImageError, match=r"^cut\.jpg: corrupt or truncated image \(image file is truncated"):
        load_image(data, name="cut.jpg")


def test_not_an_image_names_the_file_not_an_in_memory_buffer() -> None:
    for read in (image_size, load_image):
        with pytest.raises(ImageError) as info:
            read(b"<html>not a picture</html>", name="s3://bucket/page.png")
        assert str(info.value) == "s3://bucket/page.png: not a readable image (no known image format)"


@pytest.mark.parametrize("failure", [ValueError("point operation not supported for this mode"),
                                     struct.error("unpack requires a buffer of 4 bytes"), IndexError("tuple"),
                                     MemoryError()])
def test_any_decoder_failure_becomes_an_image_error(failure: Exception) -> None:
    with pytest.raises(ImageError) as info, decoding("odd.tif"):
        raise failure
    assert info.value.name == "odd.tif" and type(failure).__name__ in info.value.reason


def test_thin_strip_is_a_clear_error_not_a_huge_working_image() -> None:
    size = image_size(thin_strip_png(2, 60000), name="strip.png")  # header only: no pixels decoded
    assert size == (2, 60000)
    with pytest.raises(ImageError) as info:
        fit_size(size, 512, 16, name="strip.png")
    assert info.value.name == "strip.png"
    assert "2x60000 is too thin" in info.value.reason and "16x480000" in info.value.reason
    # the minimum side may still stretch a strip within a size x size budget; coarse scales
    # (a 16 px style side) keep room for ordinary shapes
    assert fit_size((20, 1000), 512, 16) == (16, 800)
    assert fit_size((2, 2000), 512, 16) == (16, 16000)  # 256,000 pixels: under 512 x 512
    assert fit_size((250, 50), 16, 16) == (80, 16)
    assert fit_size((4000, 3000), 512, 16) == (512, 384)
    with pytest.raises(ImageError, match=r"16x16800, more pixels than a 512x512 square"):
        fit_size((2, 2100), 512, 16)


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path: Path, umask: None, mask: int, mode: int) -> None:
    os.umask(mask)
    target = tmp_path / "gallery" / "index.html"
    write_atomic(target, b"first")
    assert stat.S_IMODE(target.stat().st_mode) == mode
    write_atomic(target, b"second")  # replacing keeps the same rule
    assert target.read_bytes() == b"second" and stat.S_IMODE(target.stat().st_mode) == mode
    assert [p.name for p in target.parent.iterdir()] == ["index.html"]  # no temp file left behind
