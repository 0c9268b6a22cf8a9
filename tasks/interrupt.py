"""A process-wide request to stop a run early (Ctrl+C, SIGTERM), checked by the work between
engine iterations: the current image is abandoned (nothing of it is written), results already
written stay, and the run ends with a report instead of hanging or dying mid-write.

The command line sets it from its signal handlers; runs on other processes (Dask workers,
Prefect workers) are stopped by their own process managers instead.
"""

from __future__ import annotations

import threading

_stop = threading.Event()
_reason: list[str] = []


class RunStopped(Exception):
    """Raised inside a task when a stop was requested; the message says why."""


def request_stop(reason: str) -> None:
    if not _stop.is_set():
        _reason.append(reason)
        _stop.set()


def stop_reason() -> str | None:
    """Why the run was asked to stop, or None while it goes on."""
    return _reason[0] if _stop.is_set() else None


def check_stop() -> None:
    """Raise RunStopped when a stop was requested."""
    reason = stop_reason()
    if reason is not None:
        raise RunStopped(reason)


def reset() -> None:
    """Forget a stop request (a new run in the same process, e.g. in tests)."""
    _stop.clear()
    _reason.clear()
