"""Ctrl+C and SIGTERM during `nst run`: stop within seconds, with a report, never mid-write.

The first signal asks the run to stop (tasks.interrupt): the batch running now abandons its
current image at the next engine iteration, the batches not started fail at once as "stopped",
and the flow still writes run.json and the gallery for what was done. The command then exits
128 + the signal's number (130 for Ctrl+C, 143 for SIGTERM). A second signal exits at once, and
so does the first when the run has not stopped within NST_STOP_GRACE_SECONDS (default 90): a
frozen object store or a vanished Prefect server can hold a request for minutes (measured: 152 s
with the S3 store frozen), and a stop must end in bounded time.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import sys
import threading
from typing import Callable, Iterator, TypeVar

from tasks.interrupt import request_stop, reset

HANDLED = (signal.SIGINT, signal.SIGTERM)
GRACE_ENV = "NST_STOP_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 90.0
# Once the work's server is gone, how long it may take to notice the stop before it is left behind.
ABANDON_GRACE_SECONDS = 5.0
T = TypeVar("T")


class RunAbandoned(Exception):
    """The work was left running in its thread because what it needs went away; the message says what."""


@contextlib.contextmanager
def stop_on_signals(command: str) -> Iterator[list[int]]:
    """Within the block, SIGINT/SIGTERM request a stop; yields the signals received so far."""
    received: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        if received:  # the second one: the user means it
            print(f"nst {command}: {signal.Signals(signum).name} again: exiting now", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        received.append(signum)
        request_stop(f"stopped by {signal.Signals(signum).name}")
        grace = _grace_seconds()
        print(f"nst {command}: {signal.Signals(signum).name}: stopping after the current step "
              f"(results written so far are kept; send it again to exit at once; exiting anyway in {grace:g} s)",
              file=sys.stderr, flush=True)
        timer = threading.Timer(grace, _give_up, (command, signum, grace))
        timer.daemon = True
        timer.start()

    reset()
    previous = {signum: signal.signal(signum, handle) for signum in HANDLED}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _grace_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_SECONDS))
    except ValueError:
        return DEFAULT_GRACE_SECONDS


def _give_up(command: str, signum: int, grace: float) -> None:
    """The run did not stop in time (blocked on storage or the server): exit without its report."""
    print(f"nst {command}: {signal.Signals(signum).name}: the run did not stop within {grace:g} s (a request to "
          "the output store or the Prefect server is hanging); exiting now without run.json: rerun the same "
          "command to finish", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def run_beside_signal_handlers(work: Callable[[], T], *, gone: Callable[[], str | None] | None = None) -> T:
    """Run `work` in a worker thread while the main thread waits, free to run signal handlers.

    `gone()`, asked while waiting, names what the work depends on that went away (the Prefect
    server): then a stop is requested, and if the work has not ended ABANDON_GRACE_SECONDS later
    (it is likely waiting out Prefect's retries) it is left behind: RunAbandoned is raised.

    Prefect's flow engine installs its own SIGTERM handler in the thread that runs the flow when
    that is the main thread (it raises TerminationSignal and the run crashes with no report, as
    seen in tests/flows/test_signals.py); in another thread it cannot, and ours stays in charge.
    The worker runs in a copy of this context, so temporary Prefect settings reach it.
    """
    context = contextvars.copy_context()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(work)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="nst-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)  # short waits: Python runs signal handlers between them
        reason = gone() if gone is not None else None
        if reason is not None:
            request_stop(reason)
            worker.join(ABANDON_GRACE_SECONDS)
            if worker.is_alive() or "error" in outcome:
                raise RunAbandoned(reason)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
