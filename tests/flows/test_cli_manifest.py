import json
import subprocess
import sys
from pathlib import Path

import pytest

from nst_cli.main import main
from tests.conftest import make_image

ROOT = Path(__file__).parents[2]


def test_validate_prints_every_problem_and_exits_1(tmp_path: Path, capsys: object) -> None:
    make_image(8, 8, 1).save(tmp_path / "a.png")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nname: x\ncontents: [a.png, a.png]\nstyles: [{id: s, uri: gone.png}]\n"
                        "engine: {iterations: many}\n")
    assert main(["validate", str(manifest)]) == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "contents[1].id: duplicate id 'a'" in err
    assert "styles[0].uri: no such file 'gone.png'" in err
    assert "engine.iterations: expected a whole number" in err
    manifest.write_text("version: 1\nname: x\ncontents: [a.png]\nstyles: [a.png]\nengine: {weights: random}\n")
    assert main(["validate", str(manifest)]) == 0


def test_dry_run_plans_ten_thousand_pairs_without_running_anything(tmp_path: Path) -> None:
    images = tmp_path / "img"
    images.mkdir()
    for i in range(100):
        make_image(12, 8, seed=i).save(images / f"c{i:03d}.png")
        make_image(8, 8, seed=i, kind="style").save(images / f"s{i:03d}.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: big\ncontents: [img/c*.png]\n"
                                     "styles: [img/s*.png]\nengine: {size: 32, weights: random}\n")
    done = subprocess.run([sys.executable, "-m", "nst_cli", "run", str(tmp_path / "m.yaml"), "--dry-run"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pairs: 10000, todo: 10000, skipped: 0" in done.stdout
    assert "style_targets: 100, style_targets_cached: 0, batches: 200" in done.stdout
    assert not (tmp_path / "out").exists()  # nothing written


def test_nst_run_exits_1_when_a_pair_failed(tmp_path: Path, prefect_server: None, capsys: object) -> None:
    make_image(40, 30, seed=1).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "art.png")
    (tmp_path / "m.yaml").write_text("version: 1\nname: cli-run\ncontents: [ok.png, bad.png]\nstyles: [art.png]\n"
                                     "cache: cache\nengine: {size: 32, iterations: 2, weights: random}\n")
    assert main(["run", str(tmp_path / "m.yaml")]) == 1
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    assert "cli-run: 1 done, 0 skipped, 1 failed" in captured.out
    assert "failed bad x art:" in captured.err and "bad.png" in captured.err
    assert (tmp_path / "out" / "cli-run" / "results" / "ok--art.png").is_file()


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]])
def test_validate_and_dry_run_say_when_the_weights_cannot_be_had(tmp_path: Path, command: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no cached ImageNet weights
    make_image(8, 8, 1).save(tmp_path / "a.png")
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "small.pth")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nname: x\ncontents: [a.png]\nstyles: [a.png]\nengine: {weights: imagenet}\n")
    assert main([command[0], str(manifest), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert "not in torchvision's cache" in err and "--weights" in err
    manifest.write_text("version: 1\nname: x\ncontents: [a.png]\nstyles: [a.png]\nengine: {weights: small.pth}\n")
    assert main([command[0], str(manifest), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert "small.pth" in err and "is not a VGG-19 state dict" in err
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_every_pair_it_would_do_and_a_readable_plan(tmp_path: Path, capsys: object) -> None:
    for i in range(2):
        make_image(40, 30, seed=i).save(tmp_path / f"photo{i}.png")
    make_image(32, 32, seed=5, kind="style").save(tmp_path / "art.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "m.yaml").write_text("version: 1\nname: dry\ncontents: [photo0.png, photo1.png, bad.png]\n"
                                     "styles: [art.png]\nengine: {size: 32, weights: random}\n")
    assert main(["run", str(tmp_path / "m.yaml"), "--dry-run", "--batch-size", "1"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "3 pairs: 2 to do in 2 engine calls of up to 1 pairs, 0 already done, 1 failing at planning" in out
    assert "call 1: photo0 x art" in out and "call 2: photo1 x art" in out
    assert "will fail bad x art: " in out and "{" not in out  # words, not a dict


def test_a_resume_with_nothing_to_do_never_imports_prefect(tmp_path: Path, prefect_server: None,
                                                           capsys: object) -> None:
    make_image(40, 30, seed=1).save(tmp_path / "ok.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "art.png")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nname: resume\ncontents: [ok.png]\nstyles: [art.png]\ncache: cache\n"
                        "engine: {size: 32, iterations: 2, weights: random}\n")
    assert main(["run", str(manifest), "--quiet"]) == 0
    assert "resume: 1 done, 0 skipped, 0 failed" in capsys.readouterr().out  # type: ignore[attr-defined]
    report = tmp_path / "out" / "resume" / "run.json"
    report.unlink()
    # again, in a fresh process: every pair is done, so it plans, writes run.json and the gallery
    # as the flow would, and stops, without Prefect
    again = _run_without_prefect(manifest)
    assert again.returncode == 0, again.stderr
    assert "prefect imported: False" in again.stdout
    assert "nothing to do (1 already done with the same fingerprint, 0 failing at planning)" in again.stdout
    assert "resume: 0 done, 1 skipped, 0 failed" in again.stdout
    assert json.loads(report.read_text())["counts"] == {"done": 0, "skipped": 1, "failed": 0}
    assert "ok" in (tmp_path / "out" / "resume" / "index.html").read_text()
    dry = subprocess.run([sys.executable, "-m", "nst_cli", "run", str(manifest), "--dry-run"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert dry.returncode == 0 and "up to 0" not in dry.stdout and "nothing to do" in dry.stdout


def _run_without_prefect(manifest: Path) -> "subprocess.CompletedProcess[str]":
    """`nst run manifest` in a fresh process that says whether it imported Prefect."""
    code = ("import sys; from nst_cli.main import main; rc = main(['run', sys.argv[1]]); "
            "print('prefect imported:', 'prefect' in sys.modules); sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, str(manifest)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_a_rerun_whose_pairs_all_fail_at_planning_again_ends_without_prefect(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "art.png")
    manifest = tmp_path / "m.yaml"
    manifest.write_text("version: 1\nname: broken\ncontents: [bad.png]\nstyles: [art.png]\ncache: cache\n"
                        "engine: {size: 32, iterations: 2, weights: random}\n")
    done = _run_without_prefect(manifest)
    assert done.returncode == 1, done.stderr  # as the flow would exit: a pair failed
    assert "prefect imported: False" in done.stdout and "broken: 0 done, 0 skipped, 1 failed" in done.stdout
    assert "failed bad x art:" in done.stderr and "bad.png" in done.stderr
    report = json.loads((tmp_path / "out" / "broken" / "run.json").read_text())
    assert report["counts"] == {"done": 0, "skipped": 0, "failed": 1} and report["task_runs"] == 0
    assert "bad.png" in (tmp_path / "out" / "broken" / "index.html").read_text()


def test_bare_nst_prints_help_and_version_works(capsys: object) -> None:
    assert main([]) == 0
    assert "usage: nst" in capsys.readouterr().out  # type: ignore[attr-defined]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nst ")  # type: ignore[attr-defined]


def test_terminal_progress_writes_plain_lines_when_not_a_tty() -> None:
    import io

    from nst_cli.run_display import TerminalProgress
    from tasks.layout import PairOutcome

    stream = io.StringIO()
    display = TerminalProgress(log_every=10, stream=stream)
    display.run_planned("demo", 3, [PairOutcome.failed("bad", "art", "bad.png: not a readable image")])
    display.batch_started(["photo0 x art"])
    display.pairs_finished(["photo0 x art"], [PairOutcome("photo0", "art", "done", losses={"total": 1.5},
                                                          seconds=2.0, batch_size=1)])
    display.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("started: 1 of 3 pairs finished: 0 done, 1 failed, 0 skipped")
    assert "running photo0 x art" in lines and "done photo0 x art (2.0 s)" in lines
    assert lines[-1].startswith("2 of 3 pairs finished: 1 done, 1 failed, 0 skipped") and "ETA" in lines[-1]
