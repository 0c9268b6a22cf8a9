import io
from pathlib import Path

import pytest
from PIL import Image

from nst_engine.errors import ImageError
from nst_engine.images import load_image, resize_max_side, save_image
from tests.conftest import make_image


def test_truncated_image_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    buffer = io.BytesIO()
    make_image(64, 64, seed=1).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(ImageError, match=r"broken\.jpg: .*(truncated|corrupt|not a readable)") as info:
        load_image(path)
    assert info.value.name == str(path)


def test_not_an_image_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ImageError, match="notes.png: not a readable image"):
        load_image(text)
    with pytest.raises(ImageError, match="missing.png: cannot read file"):
        load_image(tmp_path / "missing.png")


def test_pixel_limit_guards_against_decompression_bombs(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    with pytest.raises(ImageError, match="400x300 is over the limit of 100000 pixels"):
        load_image(path, max_pixels=100_000)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert load_image(buffer.getvalue()).size == (20, 40)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "I;16"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    image = Image.new(mode, (8, 8))
    buffer = io.BytesIO()
    image.save(buffer, "TIFF" if mode in ("CMYK", "I;16") else "PNG")
    loaded = load_image(buffer.getvalue(), name="x")
    assert loaded.mode == "RGB" and loaded.size == (8, 8)


def test_transparent_pixels_become_white() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(buffer, "PNG")
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (255, 255, 255)


def test_resize_by_max_side_keeps_aspect() -> None:
    assert resize_max_side(Image.new("RGB", (300, 150)), 100).size == (100, 50)
    assert resize_max_side(Image.new("RGB", (30, 60)), 120).size == (60, 120)


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP")])
def test_save_formats(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = tmp_path / f"out{suffix}"
    save_image(make_image(16, 16, 1), path)
    assert Image.open(path).format == fmt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
