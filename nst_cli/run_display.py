"""What `nst run` shows in a terminal: the plan, live progress, the final summary.

Progress reaches this module through tasks.progress: the flow runs in this process (threads
task runner) and its steps and tasks report to the sink installed here. On a TTY a rich live
display redraws one status block; otherwise (a log file, CI) each event is one plain line.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Sequence, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nst_engine.optimize import ProgressEvent
from tasks.layout import FAILED, PairOutcome
from tasks.plan import Plan
from tasks.progress import ProgressSink, Tally, plan_in_words
from tasks.report import report_outcomes, summary_line

SUMMARY_ROWS = 30  # past this many pairs the summary lists only the failed ones (run.json has all)


def plan_lines(name: str, output: str, plan: Plan, list_todo: bool = False) -> list[str]:
    """The plan in words: what will be done, skipped and fail, and (`list_todo`) every pair to do."""
    summary = plan.summary()
    lines = [f"plan for {name} -> {output}", f"  {plan_in_words(plan)}"]
    lines.append("  totals: " + ", ".join(f"{k}: {v}" for k, v in summary.items()))  # for scripts and grep
    if list_todo and plan.todo:
        lines.append("  to do:")
        for number, batch in enumerate(plan.batches, 1):
            lines.append(f"    call {number}: " + ", ".join(j.label for j in batch))
    for outcome in plan.failed:
        lines.append(f"  will fail {outcome.label}: {outcome.reason}")
    return lines


class TerminalProgress(ProgressSink):
    """Receives run progress from the flow's threads and shows it (live on a TTY, lines otherwise)."""

    def __init__(self, log_every: int, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live_mode = self.stream.isatty() if live is None else live
        self.log_every = log_every
        self.tally: Tally | None = None
        self.running: list[str] = []
        self.step_text = ""
        self._lock = threading.Lock()
        self._console = Console(file=self.stream, highlight=False)
        self._live: Live | None = None

    # --- the sink -------------------------------------------------------------------------------
    def run_planned(self, name: str, total: int, outcomes: Sequence[PairOutcome]) -> None:
        with self._lock:
            self.tally = Tally(total)
            self.tally.count(outcomes, worked=False)
            self.tally.start_work()
            if self.live_mode:
                self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=True)
                self._live.start()
            else:
                self._line(f"started: {self.tally.line()}")

    def batch_started(self, pairs: Sequence[str]) -> None:
        with self._lock:
            self.running = list(pairs)
            self.step_text = "starting"
            if not self.live_mode:
                self._line(f"running {', '.join(pairs)}")
            self._refresh()

    def engine_step(self, pairs: Sequence[str], event: ProgressEvent) -> None:
        with self._lock:
            self.step_text = (f"scale {event.scale_index + 1}/{event.scale_count} step {event.step}/{event.steps} "
                              f"loss {event.losses.total:.4g}")
            last = event.scale_index + 1 == event.scale_count and event.step == event.steps
            if not self.live_mode and (event.step % self.log_every == 0 or last):
                self._line(f"  {', '.join(pairs)}: {self.step_text} ({event.elapsed:.1f} s)")
            self._refresh()

    def pairs_finished(self, pairs: Sequence[str], outcomes: Sequence[PairOutcome]) -> None:
        with self._lock:
            if self.tally is not None:
                self.tally.count(outcomes)
            self.running = [p for p in self.running if p not in pairs]
            for outcome in outcomes:
                text = f"{outcome.status} {outcome.label}"
                text += f": {outcome.reason}" if outcome.status == FAILED else f" ({outcome.time_text()})"
                self._print(text)
            if not self.live_mode and self.tally is not None:
                self._line(self.tally.line())
            self._refresh()

    # --- drawing --------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(Text(text))  # above the live block, which redraws below
        else:
            self._line(text)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        tally = self.tally or Tally(0)
        running = ", ".join(self.running) if self.running else "-"
        width = 40
        filled = round(width * tally.finished / tally.total) if tally.total else width
        bar = Text.assemble(("━" * filled, "green"), ("━" * (width - filled), "grey37"), f" {tally.percent():3.0f}%")
        return Group(bar, Text(tally.line()),
                     Text(f"running: {running}" + (f" · {self.step_text}" if self.running else "")))


def print_summary(report: dict[str, Any], *, rows: bool = True) -> None:
    """The end of a run. stdout: the counts and a table of the pairs made or skipped (up to
    SUMMARY_ROWS; run.json has all); stderr: one line per failed pair with its reason."""
    outcomes = report_outcomes(report)
    print(f"{report['name']}: {summary_line(report['counts'])}; style targets computed: "
          f"{report['style_targets']['computed']}; output: {report['output']}")
    made = [o for o in outcomes if o.status != FAILED]
    if rows and made:
        shown = made[:SUMMARY_ROWS]
        if sys.stdout.isatty():
            table = Table("pair", "status", "total loss", "time")
            for o in shown:
                table.add_row(o.label, o.status, _loss(o), o.time_text())
            Console().print(table)
        else:
            for o in shown:
                print("  " + "  ".join(x for x in (o.label, o.status, _loss(o), o.time_text()) if x))
        if len(made) > len(shown):
            print(f"  ... and {len(made) - len(shown)} more: see run.json")
    for o in outcomes:
        if o.status == FAILED:
            line = f"failed {o.label}: {o.reason}"
            if sys.stderr.isatty():
                Console(file=sys.stderr, highlight=False).print(Text(line, style="red"))
            else:  # whole lines for logs and grep (rich would wrap at 80 columns)
                print(line, file=sys.stderr)


def _loss(outcome: PairOutcome) -> str:
    return f"loss {outcome.losses['total']:.4g}" if outcome.losses else ""
