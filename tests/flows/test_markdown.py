"""User text in the UI's markdown: shown as written, never turned into HTML or links."""

from __future__ import annotations

import re

from flows.markdown import markdown_link, markdown_text


def test_html_and_markdown_in_file_names_and_reasons_become_literal_text() -> None:
    hostile = '<img src=x onerror="alert(1)">.png: [x](javascript:alert(1)) **bold** | cell\nnext'
    text = markdown_text(hostile)
    assert "<" not in text and ">" not in text and "\n" not in text
    assert not re.search(r"(?<!\\)[\[\]()*|]", text)  # every bracket, star and pipe is escaped
    unescaped = re.sub(r"\\(.)", r"\1", text).replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&quot;", '"').replace("&#39;", "'").replace("&amp;", "&")
    assert unescaped == hostile.replace("\n", " ")  # the reader sees exactly what was written


def test_links_only_to_safe_schemes() -> None:
    assert markdown_link("a--b", "javascript:alert(1)") == markdown_text("a--b")
    assert markdown_link("x", "https://h/a b>c").startswith("[x](<https://h/a%20b%3Ec>")


def test_apostrophes_read_as_written_and_bidi_overrides_are_shown_not_obeyed() -> None:
    from tasks.gallery import GalleryPage, gallery_html

    assert markdown_text("Monet's garden") == "Monet's garden"  # the UI showed &#39; literally
    reason = "cannot read /in/photo\u202egnp.exe: not a readable image"
    assert "\u202e" not in markdown_text(reason) and "photo&lt;U+202E&gt;gnp.exe" in markdown_text(reason)
    page = gallery_html(GalleryPage("t", ["c"], ["s"], [{"content": "c", "style": "s", "status": "failed",
                                                          "reason": reason}]))
    assert "\u202e" not in page and "photo&lt;U+202E&gt;gnp.exe" in page
