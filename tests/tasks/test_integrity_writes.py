"""Issue 22 #2, #3, #5, #6: where the pipeline may write. `nst stylize --save-every` never
replaces an input or a file it did not make; symlinks that leave an output or cache folder are
refused; `cache:` is guarded like `output:`; a dry run writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst_cli.stylize_command import stylize_files
from nst_engine import EngineConfig
from tasks.output_guard import OutputRefusedError
from tests.conftest import make_image


def _stylize_inputs(folder: Path) -> tuple[Path, Path]:
    make_image(40, 30, seed=1).save(folder / "c.png")
    make_image(32, 32, seed=2, kind="style").save(folder / "s.png")
    return folder / "c.png", folder / "s.png"


def test_save_every_never_writes_over_an_input(tmp_path: Path) -> None:
    content, style = _stylize_inputs(tmp_path)
    victim = tmp_path / "out.scale1.iter0002.png"
    content.rename(victim)
    before = victim.read_bytes()
    config = EngineConfig(size=32, iterations=2, weights="random")
    with pytest.raises(OutputRefusedError, match="is an input"):
        stylize_files(victim, [style], tmp_path / "out.png", config, progress=False, overwrite=True, save_every_n=2)
    assert victim.read_bytes() == before and not (tmp_path / "out.png").exists()


def test_save_every_replaces_only_snapshots_it_made(tmp_path: Path) -> None:
    content, style = _stylize_inputs(tmp_path)
    mine = tmp_path / "out.scale1.iter0001.png"
    mine.write_bytes(b"a user's file")
    config = EngineConfig(size=32, iterations=2, weights="random")
    with pytest.raises(OutputRefusedError, match="would replace .*out.scale1.iter0001.png, not made by nst stylize"):
        stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)
    assert mine.read_bytes() == b"a user's file"
    mine.unlink()
    record = stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)
    assert record["snapshots"] == ["out.scale1.iter0001.png", "out.scale1.iter0002.png"]
    stylize_files(content, [style], tmp_path / "out.png", config, progress=False, save_every_n=1)  # a rerun: ours
