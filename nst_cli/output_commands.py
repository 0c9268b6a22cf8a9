"""`nst contact-sheet`: a run's results side by side, content | style | result, one row per pair."""

from __future__ import annotations

import argparse
from typing import Any

from nst_cli.errors import fail
from tasks.contact_sheet import write_contact_sheet


def add_parsers(commands: Any) -> None:
    sheet = commands.add_parser("contact-sheet", help="one picture of a run's results: content | style | result "
                                                      "per pair (OUTPUT/contact-sheet.png)")
    sheet.add_argument("output", help="the run's output folder (or s3:// prefix)")
    sheet.add_argument("--cell", type=int, default=160, help="max side of each image on the sheet, in pixels "
                                                             "(default %(default)s)")
    sheet.set_defaults(handler=cmd_contact_sheet)


def cmd_contact_sheet(args: argparse.Namespace) -> int:
    try:
        print(write_contact_sheet(args.output, args.cell))
    except ValueError as exc:  # no finished pairs to show (StorageError: main's error path)
        fail(str(exc), code=1)
    return 0
