"""benchmarks/gpu_throughput.py runs end to end on the CPU in its quick mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_throughput


def test_the_quick_cpu_run_writes_the_whole_table(weights_file: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_throughput.main(["--device", "cpu", "--quick", "--weights", str(weights_file),
                                "--out", str(tmp_path)]) == 0
    table = (tmp_path / "gpu_throughput.md").read_text()
    data = json.loads((tmp_path / "gpu_throughput.json").read_text())
    assert table in capsys.readouterr().out
    labels = [row["label"] for row in data["rows"]]
    assert labels[:3] == ["single float32", "single tf32", "single bfloat16"]
    assert [row["batch"] for row in data["rows"]][-2:] == [4, 8]
    assert all(row["error"] is None and row["seconds_per_image"] > 0 for row in data["rows"])
    assert data["rows"][0]["loss_vs_fp32"] == 0
    assert data["weights"]["kind"] == "file" and "RANDOM" not in table  # the given weights, said so
    assert "Not a GPU" in table and "decides nothing" in table
    assert data["memory_model_batch"] >= 1 and f"Memory model: {data['memory_model_batch']} images" in table
    assert all(f"| {label} |" in table for label in labels)


def test_rows_that_would_not_fit_the_time_budget_run_shorter_and_are_scaled(weights_file: Path,
                                                                            tmp_path: Path) -> None:
    assert gpu_throughput.main(["--device", "cpu", "--size", "32", "--iterations", "40", "--batches", "2",
                                "--time-budget", "0.01", "--weights", str(weights_file), "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "gpu_throughput.json").read_text())
    assert data["iterations_target"] == 40 and data["iterations_run"] == gpu_throughput.PROBE_ITERATIONS
    assert all(row["iterations"] == gpu_throughput.PROBE_ITERATIONS for row in data["rows"])
    table = (tmp_path / "gpu_throughput.md").read_text()
    assert f"each row ran {gpu_throughput.PROBE_ITERATIONS} and its seconds are scaled up to 40" in table
