"""--fallback-weights replaces the manifest's weights only when they cannot be had: an s3://
weights object that exists is kept (it is checked by its object, not by the engine's local-only
loader), one that is missing is replaced, loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst_cli.main import main
from tasks.manifest import load_manifest
from tasks.options import RunOptions
from tasks.run_setup import prepare_run
from tests.conftest import make_image


def _manifest(tmp_path: Path, weights: str) -> Path:
    make_image(40, 30, seed=1).save(tmp_path / "photo.png")
    make_image(32, 32, seed=2, kind="style").save(tmp_path / "art.png")
    path = tmp_path / "m.yaml"
    path.write_text(f"version: 1\nname: s3w\ncontents: [photo.png]\nstyles: [art.png]\ncache: cache\n"
                    f"engine: {{size: 32, iterations: 2, weights: '{weights}'}}\n")
    return path


def test_fallback_weights_keep_an_s3_weights_object_that_exists(tmp_path: Path, s3_env, bucket: str,
                                                               weights_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NST_WEIGHTS_CACHE", str(tmp_path / "weights-cache"))
    s3_env.client().upload_file(str(weights_file), bucket, "models/vgg19.pth")
    uri = f"s3://{bucket}/models/vgg19.pth"
    manifest = _manifest(tmp_path, uri)

    run = prepare_run(load_manifest(manifest), RunOptions().resolved(), fallback_weights="random")
    assert run.options.weights is None and run.options.weights_fallback == ""
    assert {pair.engine.weights for pair in run.manifest.pairs} == {uri}
    assert run.weights_warning is None

    assert main(["run", str(manifest), "--dry-run", "--fallback-weights", "random"]) == 0
    err = capsys.readouterr().err
    assert "NOT AVAILABLE" not in err and "FALLING BACK" not in err


def test_fallback_weights_replace_an_s3_weights_object_that_is_missing(tmp_path: Path, s3_env, bucket: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"s3://{bucket}/models/missing.pth"
    manifest = _manifest(tmp_path, uri)

    run = prepare_run(load_manifest(manifest), RunOptions().resolved(), fallback_weights="random")
    assert run.options.weights == "random" and uri in run.options.weights_fallback
    assert {pair.engine.weights for pair in run.manifest.pairs} == {"random"}
    assert run.weights_warning and "could not be loaded" in run.weights_warning

    assert main(["run", str(manifest), "--dry-run", "--fallback-weights", "random"]) == 0
    err = capsys.readouterr().err
    assert "WEIGHTS ARE NOT AVAILABLE" in err and uri in err and "FALLING BACK TO 'random'" in err
