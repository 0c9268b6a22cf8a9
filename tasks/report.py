"""The run report (run.json, and a shard's report): every pair's outcome and the counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from tasks.layout import FAILED, STATUSES, PairOutcome


def run_report(name: str, outcomes: Sequence[PairOutcome], stats: dict[str, Any]) -> dict[str, Any]:
    """run.json: every pair's status (done / skipped / failed with its reason) and the counts."""
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in STATUSES}
    return {"name": name, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counts": counts, **stats, "pairs": [o.to_dict() for o in outcomes]}


class PairsFailed(Exception):
    """The data of a run's Failed state when some pairs failed: the counts and the report.

    A Failed state needs an exception as its data (Prefect turns anything else into a TypeError
    traceback when it reads the state); run.json holds the same report for everyone else.
    """

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its report (results persisted or not)
        return (PairsFailed, (str(self), self.report))


def report_outcomes(report: dict[str, Any]) -> list[PairOutcome]:
    return [PairOutcome.from_dict(pair) for pair in report.get("pairs", [])]


def summary_line(counts: dict[str, int]) -> str:
    """'3 done, 1 skipped, 2 failed': the end-of-run message of every flow and the CLI."""
    return ", ".join(f"{counts.get(status, 0)} {status}" for status in STATUSES)

