"""Run progress as plain records: a tally of pair outcomes with an ETA, and a process-local sink.

The flow's steps and task shells report to `current()`; by default nobody listens. `nst run`
runs the flow in its own process (threads task runner) and installs a sink that draws the
terminal display, so the layers below never import the command line. On Dask workers or in
deployment runs the sink is the silent default: there the Prefect UI's progress artifact shows
the same tally.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from tasks.layout import DONE, FAILED, SKIPPED, PairOutcome

if TYPE_CHECKING:  # the engine (torch) is not needed to report or draw progress
    from nst_engine import ProgressEvent
    from tasks.plan import Plan


@dataclass
class Tally:
    """Pairs of one run by outcome so far, and an ETA from the pace of the pairs worked on here.

    Skipped pairs and pairs failed at planning cost nothing, so the pace counts only pairs that
    went through the engine (`worked`) since `started`.
    """

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    worked: int = 0
    started: float = field(default_factory=time.monotonic)
    work_started: float | None = None  # when the first engine task was submitted: the pace's clock

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def remaining(self) -> int:
        return max(self.total - self.finished, 0)

    def count(self, outcomes: Sequence[PairOutcome], worked: bool = True) -> None:
        for outcome in outcomes:
            if outcome.status == DONE:
                self.done += 1
            elif outcome.status == SKIPPED:
                self.skipped += 1
            elif outcome.status == FAILED:
                self.failed += 1
        if worked:
            self.worked += len(outcomes)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def start_work(self) -> None:
        self.work_started = time.monotonic()

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far; None before the first engine result."""
        if not self.remaining:
            return 0.0
        if not self.worked or self.work_started is None:
            return None
        return (time.monotonic() - self.work_started) / self.worked * self.remaining

    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0

    def line(self) -> str:
        """'5 of 6 pairs finished: 3 done, 1 failed, 1 skipped; elapsed 40 s; ETA 12 s': the one
        wording of progress (artifact, terminal)."""
        eta = self.eta_seconds()
        when = "ETA unknown yet" if eta is None else f"ETA {format_seconds(eta)}" if self.remaining else "finished"
        return (f"{self.finished} of {self.total} pairs finished: {self.done} done, {self.failed} failed, "
                f"{self.skipped} skipped; elapsed {format_seconds(self.elapsed())}; {when}")


def plan_in_words(plan: "Plan") -> str:
    """'6 pairs: 4 to do in 2 engine calls of up to 2 pairs, 0 already done, 2 failing at
    planning; style targets: 2 needed, 0 cached' (the flow's log and `nst run`)."""
    pairs = len(plan.todo) + len(plan.skipped) + len(plan.failed)
    if not plan.todo:
        return (f"{pairs} pairs: nothing to do ({len(plan.skipped)} already done with the same fingerprint, "
                f"{len(plan.failed)} failing at planning)")
    calls = len(plan.batches)
    return (f"{pairs} pairs: {len(plan.todo)} to do in {calls} engine call{'s' if calls != 1 else ''} of up to "
            f"{max(len(b) for b in plan.batches)} pairs, {len(plan.skipped)} already done, {len(plan.failed)} "
            f"failing at planning; style targets: {len(plan.style_jobs)} needed, {len(plan.cached_styles)} cached")


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class ProgressSink:
    """What a run reports as it goes. The default does nothing; `nst run` installs a display."""

    def run_planned(self, name: str, total: int, outcomes: Sequence[PairOutcome]) -> None:
        """The plan: `total` pairs, `outcomes` those decided up front (skipped, failed inputs)."""

    def batch_started(self, pairs: Sequence[str]) -> None:
        """An engine call on these pairs (names "content x style") begins."""

    def engine_step(self, pairs: Sequence[str], event: "ProgressEvent") -> None:
        """One optimisation step of the engine call on `pairs`."""

    def pairs_finished(self, pairs: Sequence[str], outcomes: Sequence[PairOutcome]) -> None:
        """The task for `pairs` ended with these outcomes."""


_sink: ProgressSink = ProgressSink()
_lock = threading.Lock()


def install(sink: ProgressSink | None) -> ProgressSink:
    """Make `sink` receive this process's run progress (None: the silent default); returns the
    one it replaces."""
    global _sink
    with _lock:
        previous, _sink = _sink, sink or ProgressSink()
    return previous


def current() -> ProgressSink:
    return _sink
