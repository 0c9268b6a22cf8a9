"""A contact sheet of a run's results: one row per pair, content | style | result.

    nst contact-sheet OUTPUT_FOLDER [--cell 160]

Reads OUTPUT/run.json (which pairs are done) and each pair's provenance (which inputs made it),
writes OUTPUT/contact-sheet.png and prints its path. Results of random weights are labelled
as such on the sheet.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageDraw

from nst_engine.images import load_image
from tasks import layout
from tasks.stores import Storage, StorageError, open_storage, read_json, read_uri

SHEET_KEY = "contact-sheet.png"
log = logging.getLogger(__name__)
_LABEL = 18  # pixels of text above each row
_GAP = 6


def contact_sheet(output: Storage, cell: int = 160) -> Image.Image:
    """The sheet for the done pairs of the run in `output`; raises ValueError when there are none."""
    report = read_json(output, layout.REPORT_KEY)
    if not isinstance(report, dict):
        raise ValueError("no readable run.json in the output folder: run `nst run` first")
    rows: list[tuple[str, list[Image.Image]]] = []
    random_weights = False
    for pair in report.get("pairs", []):
        if pair.get("status") not in (layout.DONE, layout.SKIPPED):
            continue
        name = layout.pair_name(pair["content"], pair["style"])
        record = read_json(output, layout.provenance_key(pair["content"], pair["style"]))
        if not isinstance(record, dict):
            continue
        random_weights |= (record.get("weights") or {}).get("kind") == "random"
        try:
            content = load_image(read_uri(record["inputs"]["content"]["uri"]))
            style = load_image(read_uri(record["inputs"]["style"]["uris"][0]))
            result = Image.open(io.BytesIO(output.read(layout.image_key(pair["content"], pair["style"])))).convert("RGB")
        except (StorageError, KeyError, OSError) as exc:
            log.warning("contact sheet: skipping %s: %s", name, exc)
            continue
        rows.append((layout.pair_label(pair['content'], pair['style']), [content, style, result]))
    if not rows:
        raise ValueError("run.json lists no finished pairs")
    return _draw(rows, cell, random_weights)


def _draw(rows: list[tuple[str, list[Image.Image]]], cell: int, random_weights: bool) -> Image.Image:
    columns = ("content", "style", "result")
    header = _LABEL * (2 if random_weights else 1) + _GAP
    width = len(columns) * (cell + _GAP) + _GAP
    height = header + len(rows) * (cell + _LABEL + _GAP)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if random_weights:
        draw.text((_GAP, 2), "RANDOM VGG-19 WEIGHTS: not a trained network", fill=(180, 0, 0))
    for i, title in enumerate(columns):
        draw.text((_GAP + i * (cell + _GAP), header - _LABEL), title, fill="black")
    y = header
    for label, images in rows:
        draw.text((_GAP, y + 2), label, fill=(60, 60, 60))
        y += _LABEL
        for i, image in enumerate(images):
            copy = image.copy()
            copy.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            x = _GAP + i * (cell + _GAP) + (cell - copy.width) // 2
            sheet.paste(copy, (x, y + (cell - copy.height) // 2))
        y += cell + _GAP
    return sheet


def write_contact_sheet(output_uri: str, cell: int = 160) -> str:
    output = open_storage(output_uri)
    buffer = io.BytesIO()
    contact_sheet(output, cell).save(buffer, format="PNG", optimize=True)
    output.write(SHEET_KEY, buffer.getvalue(), content_type="image/png")
    return f"{output_uri.rstrip('/')}/{SHEET_KEY}"


__all__ = ["contact_sheet", "write_contact_sheet", "SHEET_KEY"]
