"""Reports and ownership end to end (`nst run` in this process, the session's Prefect server):
a lost run.json or gallery is written again by a rerun with nothing to stylize; another
manifest cannot take the output over; a report that cannot be written reaches the terminal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nst_cli.main import main
from tests.conftest import make_image


def _manifest(folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\noutput: out\ncontents: [c.png]\nstyles: [s.png]\ncache: cache\n"
                    "engine: {size: 32, iterations: 1, weights: random}\n")
    return path


def test_reports_are_rebuilt_owned_and_their_failures_shown(tmp_path: Path, prefect_server: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    make_image(40, 30, seed=1).save(tmp_path / "c.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "s.png")
    first, out = _manifest(tmp_path, "first"), tmp_path / "out"
    assert main(["run", str(first), "--quiet"]) == 0
    (out / "run.json").unlink()
    (out / "index.html").unlink()
    capsys.readouterr()
    assert main(["run", str(first), "--quiet"]) == 0  # nothing to stylize, but the report is written again
    assert json.loads((out / "run.json").read_text())["counts"] == {"done": 0, "skipped": 1, "failed": 0}
    assert (out / "index.html").is_file()

    assert main(["run", str(_manifest(tmp_path, "second")), "--quiet"]) == 2
    assert "holds the run of the manifest named 'first', not 'second'" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["name"] == "first"

    (out / "index.html").unlink()
    (out / "index.html").mkdir()  # the gallery cannot be written
    assert main(["run", str(first), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "error: could not write run.json and the gallery: cannot write" in captured.err
    assert "gallery:" not in captured.out
    shutil.rmtree(out / "index.html")
