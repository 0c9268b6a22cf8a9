"""The gallery (index.html): a contents x styles grid of thumbnails linking to the results.

Headers show small thumbnails of the inputs themselves (written beside the results, under
thumbs/inputs/); a failed cell shows its reason as text (a tooltip is invisible on a phone);
the top of the page says when the run finished, its counts and the settings that shape the
images. The grid scrolls inside its own box with the headers kept in view, so a 20 x 20 run
stays readable on a wide screen and a phone alike.
"""

from __future__ import annotations

import html
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from nst_engine import EngineConfig
from nst_engine.weight_sources import weights_credit
from nst_engine.errors import EngineError
from nst_engine.images import encode_image, load_image, thumbnail
from tasks import layout
from tasks.manifest import ImageRef, Manifest
from tasks.stores import Storage, StorageError, read_uri

INPUT_THUMB_SIDE = 96
# The engine settings a person comparing two galleries needs; the rest is in each result's .json.
SETTINGS_SHOWN = ("size", "iterations", "scales", "style_weight", "content_weight", "tv_weight", "optimizer",
                  "init", "preserve_colors", "weights")


@dataclass(frozen=True)
class GalleryPage:
    """What the page shows: the grid, and the run around it."""

    title: str
    content_ids: Sequence[str]
    style_ids: Sequence[str]
    outcomes: Sequence[Mapping[str, Any]]  # run.json's pairs
    finished: str = ""  # ISO date and time the run finished
    counts: Mapping[str, int] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    input_thumbs: Mapping[str, str] = field(default_factory=dict)  # "content:<id>" / "style:<id>" -> key
    warning: str | None = None


def settings_shown(config: EngineConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in SETTINGS_SHOWN}


def write_input_thumbnails(manifest: Manifest, storage: Storage, refresh: set[str]) -> dict[str, str]:
    """A small JPEG of every content and style (a blend: its first image) under thumbs/inputs/;
    returns "content:<id>" / "style:<id>" -> key for those that could be read.

    Only inputs named in `refresh` (those whose pairs were made in this run: their bytes may have
    changed) or without a thumbnail yet are read: a nightly run over 10,000 photos must not
    download them all for its gallery headers (one listing finds the thumbnails already there)."""
    written: dict[str, str] = {}
    existing = set(storage.list(layout.INPUT_THUMBS_PREFIX))
    refs: list[tuple[str, ImageRef]] = [("content", r) for r in manifest.contents] + [("style", r) for r in manifest.styles]
    for kind, ref in refs:
        key = layout.input_thumbnail_key(kind, ref.id)
        if key in existing and f"{kind}:{ref.id}" not in refresh:
            written[f"{kind}:{ref.id}"] = key
            continue
        try:
            image = load_image(read_uri(ref.uris[0]), name=ref.uris[0])
            storage.write(key, encode_image(thumbnail(image, INPUT_THUMB_SIDE), "JPEG", 85), content_type="image/jpeg")
        except (EngineError, StorageError):  # an unreadable input: its pairs' cells say why
            continue
        written[f"{kind}:{ref.id}"] = key
    return written


def gallery_html(page: GalleryPage) -> str:
    """A static page with relative links, so it opens from disk or a static-website bucket."""
    by_pair = {(o["content"], o["style"]): o for o in page.outcomes}
    head = "".join(f"<th class=\"style\">{_header('style', s, page)}</th>" for s in page.style_ids)
    rows = []
    for content in page.content_ids:
        cells = "".join(f"<td>{_cell(content, style, by_pair.get((content, style)))}</td>" for style in page.style_ids)
        rows.append(f"<tr><th class=\"content\">{_header('content', content, page)}</th>{cells}</tr>")
    banner = f'<p class="warning" id="weights-warning">{html.escape(page.warning)}</p>' if page.warning else ""
    credit = weights_credit(str(page.settings.get("weights", "")))
    footer = f'<footer id="credits"><p>{html.escape(credit)}</p></footer>' if credit else ""
    counts = ", ".join(f"{page.counts.get(s, 0)} {s}" for s in layout.STATUSES)
    settings = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(_text(v))}</li>"
                       for k, v in page.settings.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(page.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: sans-serif; margin: 1em; }}
h1 {{ margin: 0 0 0.3em; font-size: 1.4em; }}
.summary {{ margin: 0.2em 0; }}
details ul {{ columns: 16em; margin: 0.3em 0; padding-left: 1.2em; font-size: 0.9em; }}
.scroll {{ overflow: auto; max-height: 85vh; border: 1px solid #ccc; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ddd; padding: 3px; text-align: center; vertical-align: middle; background: #fff; }}
thead th {{ position: sticky; top: 0; z-index: 2; }}
tbody th {{ position: sticky; left: 0; z-index: 1; }}
thead th:first-child {{ left: 0; z-index: 3; }}
th img {{ display: block; margin: 0 auto; max-width: 64px; max-height: 64px; }}
th span {{ font-size: 0.8em; }}
td img {{ display: block; width: 100%; max-width: 160px; min-width: 64px; }}
td {{ min-width: 72px; max-width: 160px; font-size: 0.75em; }}
.meta {{ color: #444; }}
.failed {{ color: #b00; text-align: left; overflow-wrap: anywhere; }}
.warning {{ background: #fee; border: 2px solid #b00; padding: 0.6em; font-weight: bold; }}
footer {{ color: #555; font-size: 0.8em; margin-top: 1em; }}
</style></head>
<body><h1>{html.escape(page.title)}</h1>{banner}
<p class="summary" id="summary">{html.escape(counts)}{f" &middot; finished {html.escape(_when(page.finished))}" if page.finished else ""}</p>
<details id="settings"><summary>settings</summary><ul>{settings}</ul></details>
<div class="scroll"><table id="grid"><thead><tr><th>content \\ style</th>{head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
{footer}
</body></html>
"""


def _when(iso: str) -> str:
    """'2026-11-26T03:00:00+00:00' -> '2026-11-26 03:00 UTC' (run.json keeps the ISO form)."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or "").replace("UTC+00:00", "UTC")


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _header(kind: str, ident: str, page: GalleryPage) -> str:
    key = page.input_thumbs.get(f"{kind}:{ident}")
    picture = f'<img src="{html.escape(key, quote=True)}" alt="{kind} {html.escape(ident, quote=True)}">' if key else ""
    return f"{picture}<span>{html.escape(ident)}</span>"


def _cell(content: str, style: str, outcome: Mapping[str, Any] | None) -> str:
    if outcome is None:
        return ""
    if outcome["status"] == layout.FAILED:
        reason = html.escape(outcome.get("reason", ""))
        return f'<div class="failed"><b>failed</b>: {reason}</div>'
    record = layout.PairOutcome.from_dict(outcome)
    name = html.escape(record.name, quote=True)
    image = html.escape(layout.image_key(content, style), quote=True)
    thumb = html.escape(layout.thumbnail_key(content, style), quote=True)
    meta = []
    if record.losses:
        meta.append(f"loss {record.losses['total']:.3g}")
    if record.time_text():
        meta.append(record.time_text())
    if record.status == layout.SKIPPED:
        meta.append("skipped: done before")
    return (f'<a href="{image}"><img src="{thumb}" alt="{html.escape(layout.pair_label(content, style))}" '
            f'data-pair="{name}"></a><div class="meta">{html.escape(" · ".join(meta))}</div>')
