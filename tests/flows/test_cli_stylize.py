import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from nst_cli.main import main
from tests.conftest import make_image


def test_nst_stylize_writes_the_image_and_its_provenance(tmp_path: Path, weights_file: Path) -> None:
    make_image(96, 72, seed=1).save(tmp_path / "a.png")
    make_image(64, 64, seed=2, kind="style").save(tmp_path / "b.png")
    out = tmp_path / "out.png"
    # A real process, as a user runs it.
    done = subprocess.run([sys.executable, "-m", "nst_cli", "stylize", str(tmp_path / "a.png"),
                           str(tmp_path / "b.png"), "-o", str(out), "--size", "128", "--iterations", "3",
                           "--weights", str(weights_file), "--quiet", "--save-every", "2"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=300)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (128, 96)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["size"] == 128 and record["config"]["weights"] == str(weights_file)
    assert record["fingerprint"] == record["config_fingerprint"] and len(record["fingerprint"]) == 64
    assert record["weights"]["kind"] == "file" and len(record["weights"]["sha256"]) == 64
    assert record["losses"]["total"] > 0 and record["seconds"] > 0
    assert record["device"] == "cpu" and record["versions"]["torch"]
    assert record["inputs"]["styles"][0]["path"].endswith("b.png")
    assert record["optimization"][0]["iterations"] >= 2  # per scale: iterations run and why it stopped
    assert (tmp_path / "out.scale1.iter0002.png").is_file()  # --save-every 2: the image being optimized


def test_nst_stylize_reports_bad_input_and_exits_non_zero(tmp_path: Path, capsys: object) -> None:
    (tmp_path / "a.png").write_bytes(b"not an image")
    make_image(16, 16, seed=2).save(tmp_path / "b.png")
    code = main(["stylize", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "o.png"),
                 "--weights", "random", "--quiet"])
    assert code == 2
    assert "a.png: not a readable image" in capsys.readouterr().err  # type: ignore[attr-defined]
    assert not (tmp_path / "o.png").exists()
    assert main(["stylize", str(tmp_path / "b.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "o.png"),
                 "--optimizer", "sgd", "--quiet"]) == 2
