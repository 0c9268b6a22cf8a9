"""The gallery (index.html): a contents x styles grid of thumbnails linking to the results."""

from __future__ import annotations

import html
from typing import Any, Sequence

from tasks import layout


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
    if outcome is None:
        return ""
    if outcome["status"] == layout.FAILED:
        return f'<div class="failed" title="{html.escape(outcome.get("reason", ""), quote=True)}">failed</div>'
    name = html.escape(layout.pair_name(content, style), quote=True)
    image = html.escape(layout.image_key(content, style), quote=True)
    thumb = html.escape(layout.thumbnail_key(content, style), quote=True)
    return (f'<a href="{image}"><img src="{thumb}" '
            f'alt="{html.escape(content)} x {html.escape(style)}" data-pair="{name}"></a>')
