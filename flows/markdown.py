"""Text from users (file names, ids, failure reasons) made inert in markdown the Prefect UI renders.

The UI renders markdown artifacts with raw HTML allowed: a file named `<img src=x onerror=...>.png`
became a real <img>, and `[x](javascript:...)` a real link. HTML-significant characters become
entities and markdown punctuation is backslash-escaped, so the text shows exactly as written.
"""

from __future__ import annotations

import re

from tasks.display import shown

# No entity for "'": the UI showed "&#39;" literally, and an apostrophe opens nothing in markdown text.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
# What can open markup inside a line: code, emphasis, links, images, table cells, strikethrough,
# autolinks. ('-', '.', '+', '=' only mean something at the start of a line, which we never give
# user text; escaping them made some renderers show the backslashes.)
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()#!|~])")


def markdown_text(text: str) -> str:
    """`text` as literal markdown: no HTML, no links, no emphasis, no table cells broken."""
    escaped = "".join(_HTML.get(ch, ch) for ch in shown(text))  # bidi overrides shown, not obeyed
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped)
    return " ".join(escaped.splitlines())  # a newline would end a table row or a list item


def markdown_link(label: str, url: str) -> str:
    """A link whose label is literal text and whose target may only be http(s), file or data."""
    if not re.match(r"^(https?|file|data):", url):
        return markdown_text(label)
    return f"[{markdown_text(label)}](<{url.replace('>', '%3E').replace(' ', '%20')}>)"
