"""What a run shows in the Prefect UI: a progress artifact, a results table, a gallery."""

from __future__ import annotations

import base64
import re
from typing import Sequence
from uuid import UUID

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)

from flows.markdown import markdown_link, markdown_text
from tasks.layout import FAILED, GALLERY_KEY, PairOutcome, thumbnail_key
from tasks.progress import Tally
from tasks.stores import Storage


def artifact_key(name: str, kind: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "run"
    return f"nst-{slug}-{kind}"


class Progress:
    """The progress artifact of a run: every pair counted (done, failed, skipped) and an ETA."""

    def __init__(self, name: str, tally: Tally) -> None:
        self.tally = tally
        self.artifact_id: UUID = create_progress_artifact(
            tally.percent(), key=artifact_key(name, "progress"), description=tally.line())

    def update(self) -> None:
        update_progress_artifact(self.artifact_id, self.tally.percent(),
                                 description=self.tally.line())


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


def open_hint(storage: Storage) -> str:
    """How a person opens the links: presigned URLs open anywhere; browsers refuse file:// links
    from the UI's http:// page, so for a local folder the hint says what to do instead."""
    if not storage.url(GALLERY_KEY).startswith("file://"):
        return "Links are presigned URLs: click to open (they expire, see NST_S3_PRESIGN_SECONDS)."
    folder = storage.uri  # the user's folder name: the whole hint goes in as literal text
    return markdown_text(f"Local output in {folder}: browsers refuse file:// links from this page. Copy a link "
                         f"into the address bar, open {folder}/index.html from your file manager, or serve the "
                         f"folder: python -m http.server --directory {folder} 8000 and open http://localhost:8000/.")


def publish_results(name: str, outcomes: Sequence[PairOutcome], storage: Storage) -> None:
    """A results table (pair, status, loss, seconds before the long reason and link columns, so
    those cannot push them off-screen) and the gallery as markdown: thumbnails, clickable links,
    failures."""
    rows = [{"pair": o.name, "status": o.status,
             "total loss": f"{o.losses['total']:.4g}" if o.losses else "",
             "seconds": o.time_text(), "reason": o.reason, "link": o.link} for o in outcomes]
    create_table_artifact(rows, key=artifact_key(name, "results"), description=f"{name}: every pair")
    budget = [INLINE_THUMBNAILS_BYTES]
    # Everything a user controls (ids, file names in reasons, folder names) goes in as literal text.
    images = [f"| {markdown_text(o.label)} | ![{markdown_text(o.label)}]"
              f"({_thumbnail_src(storage, thumbnail_key(o.content, o.style), budget)}) | "
              f"{markdown_link(o.name + '.png', o.link)} | {rows[i]['total loss'] or o.status} | {o.time_text()} |"
              for i, o in enumerate(outcomes) if o.status != FAILED]
    failed = [f"- {markdown_text(f'{o.label}: {o.reason}')}" for o in outcomes if o.status == FAILED]
    markdown = "\n".join([f"# {markdown_text(name)}", f"Gallery: {markdown_link('index.html', storage.url(GALLERY_KEY))}", "",
                          open_hint(storage), "", "| pair | result | image | total loss | seconds |",
                          "|---|---|---|---|---|", *images] + (["", "## Failed", *failed] if failed else []))
    create_markdown_artifact(markdown, key=artifact_key(name, "gallery"), description=f"{name}: gallery")

