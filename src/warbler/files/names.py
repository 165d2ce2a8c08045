"""Upload file names made safe to store and to hand back: a plain name, never a path."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 255
MAX_EXTENSION_CHARS = 16
FALLBACK_NAME = "file"
# Bidirectional controls can disguise an extension ("invoice\u202egnp.exe" shows as ….png).
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SEPARATORS = re.compile(r"[/\\]")


def clean_filename(raw: str | None) -> str:
    """The last path component, without control characters, at most 255 characters.

    Any script survives (``季度报告.pdf`` stays as it is); an empty result becomes ``file``.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = _SEPARATORS.split(name)[-1]
    name = "".join(
        ch for ch in name if unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS
    ).strip()
    if name in ("", ".", ".."):
        return FALLBACK_NAME
    if len(name) > MAX_NAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= MAX_EXTENSION_CHARS:
            name = f"{stem[: MAX_NAME_CHARS - len(extension) - 1]}.{extension}"
        else:
            name = name[:MAX_NAME_CHARS]
    return name
