import json
from pathlib import Path

import pytest

from nst_engine.images import save_image
from nst_cli.main import main as nst
from tests.conftest import make_image


def _run_folder(tmp_path: Path, kind: str) -> Path:
    out = tmp_path / "out"
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    save_image(make_image(64, 48, seed=1), content)
    save_image(make_image(40, 40, seed=2, kind="style"), style)
    pairs = [{"content": "c", "style": "s", "status": "done"}, {"content": "x", "style": "s", "status": "failed"}]
    (out / "results").mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"pairs": pairs}))
    save_image(make_image(64, 48, seed=3), out / "results" / "c--s.png")
    record = {"weights": {"kind": kind}, "inputs": {"content": {"uri": str(content)}, "style": {"uris": [str(style)]}}}
    (out / "results" / "c--s.json").write_text(json.dumps(record))
    return out


def test_the_contact_sheet_shows_each_done_pair_and_labels_random_weights(tmp_path: Path) -> None:
    from PIL import Image

    out = _run_folder(tmp_path, "random")
    assert nst(["contact-sheet", str(out), "--cell", "100"]) == 0
    sheet = Image.open(out / "contact-sheet.png")
    assert sheet.width == 3 * 106 + 6  # content | style | result
    red = [p for p in sheet.crop((0, 0, sheet.width, 18)).get_flattened_data() if p[0] > 150 and p[1] < 60]
    assert red  # the random-weights label
    other = _run_folder(tmp_path / "trained", "imagenet")
    assert nst(["contact-sheet", str(other), "--cell", "100"]) == 0
    top = Image.open(other / "contact-sheet.png")
    assert top.height < sheet.height  # no label row
    assert not [p for p in top.crop((0, 0, top.width, 18)).get_flattened_data() if p[0] > 150 and p[1] < 60]


def test_no_run_report_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nst(["contact-sheet", str(tmp_path)]) == 1
    assert "run.json" in capsys.readouterr().err
