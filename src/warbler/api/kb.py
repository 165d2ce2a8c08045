"""Knowledge bases and their documents: manage KBs, upload files or URLs, watch ingestion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc
from warbler.api.kb_schemas import (
    DocumentOut,
    KnowledgeBaseIn,
    KnowledgeBaseOut,
    KnowledgeBaseUpdateIn,
    ReindexIn,
    ReindexOut,
    SubmittedListOut,
    SubmittedOut,
    UrlIn,
)
from warbler.api.schemas import ErrorResponse
from warbler.errors import InvalidRequest, TooLarge
from warbler.files.store import CHUNK_BYTES
from warbler.kb.bases import MANAGE_SCOPE

router = APIRouter(prefix="/kb", tags=["knowledge base"])

MAX_FILES_PER_REQUEST = 50
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no such KB (or not readable)"}
}
_MANAGE: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "needs an owner/admin or the kb:write scope"},
    404: {"model": ErrorResponse, "description": "no such KB or document"},
}


@router.post(
    "", response_model=KnowledgeBaseOut, status_code=status.HTTP_201_CREATED, responses=_MANAGE
)
async def create_kb(body: KnowledgeBaseIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Create a knowledge base (owners, admins, or an API key with ``kb:write``)."""
    out = await svc.kb.create(
        principal, name=body.name, description=body.description, read_roles=body.read_roles,
        read_group_ids=body.read_group_ids,
    )  # fmt: skip
    access = {k: out[k] for k in ("read_roles", "read_group_ids")}
    await record_change(svc, principal, "kb.created", "kb", out["id"], **access)
    return out


@router.get("", response_model=list[KnowledgeBaseOut])
async def list_kbs(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """The knowledge bases the caller may read."""
    return await svc.kb.list(principal)


@router.get("/{kb_id}", response_model=KnowledgeBaseOut, responses=_NOT_FOUND)
async def get_kb(kb_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.kb.get(principal, kb_id)


@router.patch("/{kb_id}", response_model=KnowledgeBaseOut, responses=_MANAGE)
async def update_kb(
    kb_id: str, body: KnowledgeBaseUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Rename, describe, or change who may read the KB (omitted fields stay)."""
    changes = body.model_dump(exclude_unset=True)
    out = await svc.kb.update(principal, kb_id, changes)
    # Who may read it is a permission: its new value is recorded, not only that it changed.
    access = {k: out[k] for k in ("read_roles", "read_group_ids") if k in changes}
    await record_change(svc, principal, "kb.updated", "kb", kb_id, changes, **access)
    return out


@router.delete("/{kb_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_MANAGE)
async def delete_kb(kb_id: str, principal: Auth, svc: Svc) -> Response:
    """Delete the KB with all its documents, chunks and curated answers."""
    await svc.kb.delete(principal, kb_id)
    await record_change(svc, principal, "kb.deleted", "kb", kb_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{kb_id}/documents",
    response_model=SubmittedListOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_MANAGE,
        413: {"model": ErrorResponse, "description": "larger than WARBLER_KB_MAX_DOCUMENT_BYTES"},
        415: {"model": ErrorResponse, "description": "not txt, md, html, pdf, docx, csv or xlsx"},
    },
)
async def upload_documents(
    kb_id: str,
    principal: Auth,
    svc: Svc,
    files: Annotated[list[UploadFile], File(description="One or more documents (repeat `files`).")],
) -> dict[str, Any]:
    """Upload documents; each is ingested by a background job. A file whose name is already
    in the KB replaces that document once ingested; the same bytes again are ``skipped``.
    One empty, too large or unsupported file refuses the whole request."""
    principal.require_admin(MANAGE_SCOPE)  # before reading any bytes
    if len(files) > MAX_FILES_PER_REQUEST:
        raise InvalidRequest(f"at most {MAX_FILES_PER_REQUEST} files per request")
    limit = svc.settings.kb_max_document_bytes
    batch = [(upload.filename or "", await _read(upload, limit)) for upload in files]
    for name, data in batch:  # all or nothing: a bad file refuses the whole request
        svc.kb_ingest.check_file(name, data)
    out = []
    for name, data in batch:
        submitted = await svc.kb_ingest.submit_file(principal, kb_id, name, data)
        out.append(submitted.as_dict())
    return {"documents": out}


@router.post(
    "/{kb_id}/documents/url",
    response_model=SubmittedOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_MANAGE, 400: {"model": ErrorResponse, "description": "URL not allowed"}},
)
async def submit_url(kb_id: str, body: UrlIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Ingest a web page or file by URL (public hosts only unless the operator allowed the
    host). Submitting it again fetches it again; unchanged content is skipped."""
    return (await svc.kb_ingest.submit_url(principal, kb_id, body.url)).as_dict()


@router.get("/{kb_id}/documents", response_model=list[DocumentOut], responses=_NOT_FOUND)
async def list_documents(
    kb_id: str,
    principal: Auth,
    svc: Svc,
    status: Literal["pending", "processing", "ready", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The KB's documents by source: status, progress and error of each."""
    return await svc.kb_ingest.list_documents(
        principal, kb_id, status=status, limit=limit, offset=offset
    )


@router.get("/{kb_id}/documents/{doc_id}", response_model=DocumentOut, responses=_NOT_FOUND)
async def get_document(kb_id: str, doc_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.kb_ingest.get_document(principal, kb_id, doc_id)


@router.post(
    "/{kb_id}/documents/{doc_id}/retry",
    response_model=DocumentOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_MANAGE, 409: {"model": ErrorResponse, "description": "ready, or running"}},
)
async def retry_document(kb_id: str, doc_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Ingest a failed document again now (a URL document: fetch it again)."""
    return await svc.kb_ingest.retry(principal, kb_id, doc_id)


@router.delete(
    "/{kb_id}/documents/{doc_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_MANAGE
)
async def delete_document(kb_id: str, doc_id: str, principal: Auth, svc: Svc) -> Response:
    await svc.kb_ingest.delete_document(principal, kb_id, doc_id)
    await record_change(svc, principal, "kb.document_deleted", "kb_document", doc_id, kb_id=kb_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{kb_id}/reindex",
    response_model=ReindexOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_MANAGE,
)
async def reindex(
    kb_id: str, principal: Auth, svc: Svc, body: ReindexIn | None = None
) -> dict[str, Any]:
    """Re-embed the KB's chunks with the current embedding model (a ``kb.reindex`` job; see
    ``GET /jobs/{job_id}``). Only chunks made by another model, unless ``force``."""
    job = await svc.kb_ingest.reindex(principal, kb_id, force=bool(body and body.force))
    return {"job_id": job["id"], "status": job["status"]}


async def _read(upload: UploadFile, limit: int) -> bytes:
    data = bytearray()
    while chunk := await upload.read(CHUNK_BYTES):
        data += chunk
        if len(data) > limit:
            raise TooLarge(
                f"{upload.filename} is larger than {limit} bytes",
                details={"limit": limit, "source": upload.filename},
            )
    return bytes(data)
