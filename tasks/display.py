"""Text from users (file names, URIs, failure reasons) made safe to show: Unicode controls that
change how text around them reads are written out instead of obeyed.

U+202E (right-to-left override) makes `photo\u202egnp.exe` display as `photoexe.png`; the
zero-width and other invisible format characters hide what a name really is. Each becomes a
visible `<U+202E>`. One rule for the gallery, the UI's markdown and the terminal.
"""

from __future__ import annotations

import unicodedata

_KEEP = {"\t", "\n", "\r"}  # layout the callers handle themselves


def shown(text: object) -> str:
    """`text` with format (Cf) and control (Cc) characters written as <U+XXXX>."""
    return "".join(ch if ch in _KEEP or unicodedata.category(ch) not in ("Cf", "Cc") else f"<U+{ord(ch):04X}>"
                   for ch in str(text))


__all__ = ["shown"]
