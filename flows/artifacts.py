"""What a run shows in the Prefect UI: a progress artifact, a results table, a gallery."""

from __future__ import annotations

import base64
import re
from typing import Sequence
from uuid import UUID

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from tasks.layout import FAILED, GALLERY_KEY, PairOutcome, thumbnail_key
from tasks.stores import Storage


def artifact_key(name: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "run"
    return f"nst-{slug}-{kind}"


class Progress:
    """A progress artifact advanced as pair batches finish."""

    def __init__(self, name: str, total: int) -> None:
        self.total = max(total, 1)
        self.finished = 0
        self.artifact_id: UUID = create_progress_artifact(
            0.0, key=artifact_key(name, "progress"), description=f"{name}: pairs finished out of {total}")

    def advance(self, pairs: int) -> None:
        self.finished += pairs
        update_progress_artifact(self.artifact_id, 100.0 * self.finished / self.total,
                                 description=f"{self.finished} of {self.total} pairs finished")


# The UI is served over http://, and browsers refuse file:// images there ("Not allowed to load
# local resource", seen in tests/ui): local thumbnails are inlined as data: URIs, up to this many
# bytes per gallery; past it (or on S3, whose presigned URLs load) the URL is used.
INLINE_THUMBNAILS_BYTES = 1_000_000


def _thumbnail_src(storage: Storage, key: str, budget: list[int]) -> str:
    url = storage.url(key)
    if not url.startswith("file://"):
        return url
    try:
        data = storage.read(key)
    except Exception:  # noqa: BLE001 - a missing thumbnail only loses its picture in the UI
        return url
    if len(data) > budget[0]:
        return url
    budget[0] -= len(data)
    # The file's own URL stays as the title: hovering shows where the thumbnail lives.
    return f'data:image/jpeg;base64,{base64.b64encode(data).decode("ascii")} "{url}"'


def publish_results(name: str, outcomes: Sequence[PairOutcome], storage: Storage) -> None:
    """A results table (pair, status, losses, seconds, link) and a gallery as markdown."""
    rows = [{"pair": o.name, "status": o.status, "reason": o.reason,
             "total loss": f"{o.losses['total']:.4g}" if o.losses else "",
             "seconds": o.seconds or "", "link": o.link} for o in outcomes]
    create_table_artifact(rows, key=artifact_key(name, "results"), description=f"{name}: every pair")
    budget = [INLINE_THUMBNAILS_BYTES]
    images = [f"| {o.content} x {o.style} | ![{o.content} x {o.style}]"
              f"({_thumbnail_src(storage, thumbnail_key(o.content, o.style), budget)}) |"
              for o in outcomes if o.status != FAILED]
    failed = [f"- {o.content} x {o.style}: {o.reason}" for o in outcomes if o.status == FAILED]
    markdown = "\n".join([f"# {name}", f"Gallery: {storage.url(GALLERY_KEY)}", "", "| pair | result |",
                          "|---|---|", *images] + (["", "## Failed", *failed] if failed else []))
    create_markdown_artifact(markdown, key=artifact_key(name, "gallery"), description=f"{name}: gallery")
