"""The run report (run.json) and the gallery (index.html): a contents x styles grid."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any, Sequence

GALLERY_KEY = "index.html"
REPORT_KEY = "run.json"


def run_report(name: str, outcomes: Sequence[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:
    """run.json: every pair's status (done / skipped / failed with its reason) and the counts."""
    counts = {status: sum(1 for o in outcomes if o["status"] == status) for status in ("done", "skipped", "failed")}
    return {"name": name, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counts": counts, **stats, "pairs": list(outcomes)}


def is_run_report(data: object) -> bool:
    """Whether parsed JSON is a report run_report made (how a run.json is told from a user's file)."""
    return (isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("pairs"), list)
            and isinstance(data.get("counts"), dict) and set(data["counts"]) == {"done", "skipped", "failed"})


def gallery_html(title: str, content_ids: Sequence[str], style_ids: Sequence[str],
                 outcomes: Sequence[dict[str, Any]], warning: str | None = None) -> str:
    """A static page with relative links, so it opens from disk or a static-website bucket."""
    by_pair = {(o["content"], o["style"]): o for o in outcomes}
    head = "".join(f"<th>{html.escape(s)}</th>" for s in style_ids)
    rows = []
    for content in content_ids:
        cells = []
        for style in style_ids:
            outcome = by_pair.get((content, style))
            cells.append(f"<td>{_cell(content, style, outcome)}</td>")
        rows.append(f"<tr><th>{html.escape(content)}</th>{''.join(cells)}</tr>")
    banner = f'<p class="warning">{html.escape(warning)}</p>' if warning else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px; text-align: center; vertical-align: middle; }}
td img {{ display: block; max-width: 192px; max-height: 192px; }}
.failed {{ color: #b00; max-width: 192px; font-size: 0.8em; }}
.warning {{ background: #fee; border: 2px solid #b00; padding: 0.6em; font-weight: bold; }}
</style></head>
<body><h1>{html.escape(title)}</h1>{banner}
<table id="grid"><thead><tr><th>content \\ style</th>{head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
</body></html>
"""


def _cell(content: str, style: str, outcome: dict[str, Any] | None) -> str:
    name = html.escape(f"{content}--{style}", quote=True)
    if outcome is None:
        return ""
    if outcome["status"] == "failed":
        return f'<div class="failed" title="{html.escape(outcome.get("reason", ""), quote=True)}">failed</div>'
    return (f'<a href="results/{name}.png"><img src="thumbs/{name}.jpg" '
            f'alt="{html.escape(content)} x {html.escape(style)}" data-pair="{name}"></a>')
