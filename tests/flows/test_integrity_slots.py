"""A --gpu-limit slot leaked by a killed run is reported while the next run waits,
instead of a silent ~5-minute stall (the session's Prefect server)."""

from __future__ import annotations

import logging
import threading

import pytest

from tasks import prefect_tasks
from tasks.options import RunOptions


def test_a_wait_for_a_leaked_slot_is_reported(prefect_server: None, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    monkeypatch.setattr(prefect_tasks, "SLOT_WAIT_NOTICE_SECONDS", 1.0)
    name = "integrity-leak"
    prefect_tasks.ensure_concurrency_limit(name, 1)
    with get_client(sync_client=True) as client:  # what a SIGKILLed holder leaves behind
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
    got: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="tasks.prefect_tasks"):
        worker = threading.Thread(target=lambda: got.append(_hold(name)), daemon=True)
        worker.start()
        worker.join(4)
        assert worker.is_alive() and not got
        assert f"for a slot of the GPU limit '{name}' (1 of 1 slots taken)" in caplog.text
        assert f"prefect gcl update {name} --active-slots 0" in caplog.text
        with get_client(sync_client=True) as client:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        worker.join(30)
    assert got == [True]


def _hold(name: str) -> bool:
    with prefect_tasks.gpu_slot(RunOptions(gpu_limit=name)):
        return True
