"""File upload, metadata and download, for members of the file's conversation."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import ErrorResponse, FileOut
from warbler.files.content_types import RASTER_IMAGES
from warbler.files.store import CHUNK_BYTES

router = APIRouter(prefix="/files", tags=["files"])


@router.post(
    "",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"model": ErrorResponse, "description": "no such conversation (or not a member)"},
        413: {"model": ErrorResponse, "description": "larger than WARBLER_MAX_UPLOAD_BYTES"},
        415: {"model": ErrorResponse, "description": "type not allowed, or content contradicts it"},
    },
)
async def upload(
    principal: Auth,
    svc: Svc,
    file: Annotated[UploadFile, File(description="The file; its part's Content-Type is checked.")],
    conversation_id: Annotated[str, Form(min_length=1, max_length=26)],
) -> dict[str, Any]:
    """Upload a file to a conversation. Send it in a message (kind ``image`` or ``file``)
    by its ``id``; only the conversation's members can read it."""
    return await svc.files.upload(
        principal, conversation_id, file.filename, file.content_type, _chunks(file)
    )


@router.get("/{file_id}", response_model=FileOut, responses={404: {"model": ErrorResponse}})
async def info(file_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.files.info(principal, file_id)


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
        304: {"description": "If-None-Match matched the ETag"},
        404: {"model": ErrorResponse},
    },
)
async def content(file_id: str, principal: Auth, svc: Svc, request: Request) -> Response:
    """The file's bytes. The ETag is the quoted SHA-256; send it back in If-None-Match."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        known = await svc.files.info(principal, file_id)
        if _etag_matches(if_none_match, _etag(known["sha256"])):
            return Response(
                status_code=status.HTTP_304_NOT_MODIFIED,
                headers={"ETag": _etag(known["sha256"]), "Cache-Control": "private"},
            )
    download = await svc.files.open(principal, file_id)
    f = download.file
    inline = f["content_type"] in RASTER_IMAGES
    headers = {
        "Content-Type": f["content_type"],
        "Content-Length": str(f["size"]),
        "Content-Disposition": content_disposition(f["name"], inline=inline),
        "X-Content-Type-Options": "nosniff",
        # Should a browser render it anyway, it runs no script and loads nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "ETag": _etag(f["sha256"]),
        "Cache-Control": "private",
    }
    return StreamingResponse(download.chunks, headers=headers)


def content_disposition(name: str, *, inline: bool = False) -> str:
    """``attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`` (RFC 6266)."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = "".join("_" if c in '"\\' or not c.isprintable() else c for c in fallback).strip()
    stem, dot, extension = fallback.rpartition(".")
    if not fallback or (dot and not stem.strip(" ._")):
        # Nothing readable survived (a Chinese name, say): keep at least the extension.
        fallback = f"file.{extension}" if dot and extension else "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk


def _etag(sha256: str) -> str:
    return f'"{sha256}"'


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates
