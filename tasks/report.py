"""The run report (run.json, and a shard's report): every pair's outcome and the counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from tasks.layout import STATUSES, PairOutcome


def run_report(name: str, outcomes: Sequence[PairOutcome], stats: dict[str, Any],
               earlier: Sequence[PairOutcome] = ()) -> dict[str, Any]:
    """run.json: every pair's status (done / skipped / failed with its reason) and the counts.

    `counts` are this invocation's; `earlier` are pairs of the output this invocation did not
    touch (e.g. outside `--only`), carried over from the previous report so that run.json and
    the gallery describe the whole output. `output_counts` count both.
    """
    def count(items: Sequence[PairOutcome]) -> dict[str, int]:
        return {status: sum(1 for o in items if o.status == status) for status in STATUSES}

    everything = [*outcomes, *earlier]
    return {"name": name, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counts": count(outcomes), "output_counts": count(everything), "carried_over": len(earlier),
            **stats, "pairs": [o.to_dict() for o in everything]}


def is_run_report(data: object) -> bool:
    """Whether parsed JSON is a report run_report made (how a run.json is told from a user's file)."""
    return (isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("pairs"), list)
            and isinstance(data.get("counts"), dict) and set(data["counts"]) == {"done", "skipped", "failed"})


def earlier_outcomes(previous: object, outcomes: Sequence[PairOutcome],
                     manifest_pairs: Sequence[tuple[str, str]]) -> list[PairOutcome]:
    """From a previous run.json, the outcomes of the manifest's pairs that `outcomes` lacks."""
    if not isinstance(previous, dict) or not isinstance(previous.get("pairs"), list):
        return []
    touched = {(o.content, o.style) for o in outcomes}
    wanted = set(manifest_pairs) - touched
    found = {}
    for pair in previous["pairs"]:
        if isinstance(pair, dict) and (pair.get("content"), pair.get("style")) in wanted:
            outcome = PairOutcome.from_dict(pair)
            found[(outcome.content, outcome.style)] = outcome
    return [found[pair] for pair in manifest_pairs if pair in found]


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
