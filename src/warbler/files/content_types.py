"""What an upload is: its declared type, checked against magic bytes, or inferred from its name.

Magic bytes are checked only where they are reliable (PNG, JPEG, GIF, WebP, PDF and ZIP, which
the OOXML and OpenDocument formats are). Text formats have no magic, so their declared type is
trusted; downloads are served with ``nosniff`` and as attachments, which keeps that safe.
"""

from __future__ import annotations

import mimetypes

from warbler.errors import UnsupportedType

OCTET_STREAM = "application/octet-stream"
HEAD_BYTES = 16  # enough for every signature below (WebP's is 12 bytes long)

ZIP = "application/zip"
OOXML = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
# Formats whose files are ZIP archives: ZIP magic is consistent with any of them.
ZIP_FAMILY = frozenset(
    {
        ZIP,
        *OOXML,
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
        "application/java-archive",
    }
)
RASTER_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# A file declared as one of these must carry the matching magic bytes.
SNIFFABLE = RASTER_IMAGES | {"application/pdf"} | ZIP_FAMILY

ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": ZIP,
    "application/x-zip": ZIP,
    "text/x-markdown": "text/markdown",
}

# Extensions the interpreter's built-in table lacks. MimeTypes() reads only that table, not
# the host's /etc/mime.types, so inference is the same on every machine.
_MIME = mimetypes.MimeTypes()
for _ext, _type in {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".webp": "image/webp",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".docx": OOXML[0],
    ".xlsx": OOXML[1],
    ".pptx": OOXML[2],
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".epub": "application/epub+zip",
}.items():
    _MIME.add_type(_type, _ext)


def normalise(content_type: str | None) -> str | None:
    """``Image/JPG; q=1`` → ``image/jpeg``; ``None`` for a missing or empty type."""
    if not content_type:
        return None
    essence = content_type.split(";", 1)[0].strip().lower()
    return ALIASES.get(essence, essence) or None


def sniff(head: bytes) -> str | None:
    """The type the first bytes prove, or ``None`` when they prove nothing."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return ZIP
    return None


def from_name(name: str) -> str | None:
    guessed, _encoding = _MIME.guess_type(name, strict=False)
    return normalise(guessed)


def _consistent(claimed: str, detected: str) -> bool:
    return claimed == detected or (detected == ZIP and claimed in ZIP_FAMILY)


def resolve(declared: str | None, name: str, head: bytes) -> str:
    """The upload's content type, or ``UnsupportedType`` when the content contradicts it.

    A declared type wins if the content agrees. With none (or ``application/octet-stream``)
    the magic bytes decide, refined by the extension within the ZIP family (a ``.docx`` is a
    ZIP); failing that, the extension; failing that, ``application/octet-stream``.
    """
    detected = sniff(head)
    claimed = normalise(declared)
    if claimed in (None, OCTET_STREAM):
        by_name = from_name(name)
        if detected is not None:
            return by_name if by_name and _consistent(by_name, detected) else detected
        claimed = by_name or OCTET_STREAM
    if detected is not None and not _consistent(claimed, detected):
        raise UnsupportedType(
            f"the content is {detected}, not {claimed}",
            details={"declared": claimed, "detected": detected},
        )
    if detected is None and claimed in SNIFFABLE:
        raise UnsupportedType(
            f"the content is not {claimed}", details={"declared": claimed, "detected": None}
        )
    return claimed
