"""`nst run` scale-out options: a local Dask cluster end to end, and the checks on bad combinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst_cli.main import main
from tests.flows.test_stylize_manifest import write_manifest


def test_nst_run_on_a_local_dask_cluster_of_two_workers(tmp_path: Path, prefect_server: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("prefect_dask")
    manifest = write_manifest(tmp_path / "cli-dask", contents=2, styles=2, engine="{size: 32, iterations: 2}")
    assert main(["run", str(manifest), "--task-runner", "dask", "--workers", "2", "--batch-size", "1"]) == 0
    assert "cli-dask: 4 done, 0 skipped, 0 failed; style targets computed: 2" in capsys.readouterr().out
    assert (manifest.parent / "out" / "index.html").read_text().count("data-pair=") == 4


@pytest.mark.parametrize(("flags", "message"), [
    (["--shards", "2", "--workers", "2"], "does not combine with the Dask options"),
    (["--dask-address", "tcp://127.0.0.1:8786", "--workers", "2"], "either a Dask scheduler address or"),
])
def test_nst_run_refuses_scale_options_that_do_not_go_together(tmp_path: Path, flags: list[str], message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "cli-bad", contents=1, styles=1)
    assert main(["run", str(manifest), *flags]) == 2
    assert message in capsys.readouterr().err


def test_nst_run_shards_needs_the_server_the_workers_poll(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    manifest = write_manifest(tmp_path / "cli-noserver", contents=1, styles=1)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["run", str(manifest), "--shards", "2"]) == 2
    assert "--shards needs the Prefect server the workers poll: set PREFECT_API_URL" in capsys.readouterr().err
