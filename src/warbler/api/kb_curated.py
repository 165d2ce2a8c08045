"""Curated answers of a knowledge base: list, create, change, delete, import a CSV/XLSX sheet."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import Request
from warbler.kb.curated import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, MAX_QUESTIONS

router = APIRouter(prefix="/kb/{kb_id}/curated", tags=["knowledge base"])

_Questions = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]],
    Field(min_length=1, max_length=MAX_QUESTIONS, description="Phrasings of the question."),
]


class CuratedIn(Request):
    questions: _Questions
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    link: str | None = Field(None, max_length=2000, description="Cited with the answer.")
    enabled: bool = True


class CuratedUpdateIn(Request):
    questions: _Questions | None = None
    answer: str | None = Field(None, min_length=1, max_length=MAX_ANSWER_CHARS)
    link: str | None = Field(None, max_length=2000, description="null removes the link.")
    enabled: bool | None = None


class CuratedAnswerOut(BaseModel):
    id: str
    kb_id: str
    questions: list[str]
    answer: str
    link: str | None
    enabled: bool
    hits: int = Field(description="Times it was served.")
    last_hit_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ImportOut(BaseModel):
    rows: int = Field(description="Question/answer rows read from the sheet.")
    created: int
    updated: int = Field(description="Rows that changed an answer with one of their questions.")
    unchanged: int


@router.get("", response_model=list[CuratedAnswerOut])
async def list_curated(kb_id: str, principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """Every curated answer of the KB (anyone who may read the KB may read them)."""
    return await svc.curated.list(principal, kb_id)


@router.post("", response_model=CuratedAnswerOut, status_code=status.HTTP_201_CREATED)
async def create(kb_id: str, body: CuratedIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Add a curated answer (tenant admins, or an API key with ``kb:write``)."""
    return await svc.curated.create(
        principal, kb_id, questions=body.questions, answer=body.answer, link=body.link,
        enabled=body.enabled,
    )  # fmt: skip


@router.post("/import", response_model=ImportOut)
async def import_sheet(
    kb_id: str,
    principal: Auth,
    svc: Svc,
    file: Annotated[
        UploadFile, File(description="A CSV or XLSX sheet with question/answer columns.")
    ],
    format: Annotated[
        str | None, Form(description="csv or xlsx (default: the file name's)")
    ] = None,
) -> dict[str, int]:
    """Import question/answer rows: a header row names the question column(s) (question,
    similar questions, 问题, 相似问题, ...) and the answer column (answer, 答案, ...); a cell
    may hold several phrasings, one per line. Importing the same sheet again changes nothing."""
    fmt = format or PurePosixPath(file.filename or "").suffix.lstrip(".")
    data = await file.read()
    return await svc.curated.import_file(principal, kb_id, data, fmt)


@router.get("/{answer_id}", response_model=CuratedAnswerOut)
async def get(kb_id: str, answer_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.curated.get(principal, kb_id, answer_id)


@router.patch("/{answer_id}", response_model=CuratedAnswerOut)
async def update(
    kb_id: str, answer_id: str, body: CuratedUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Change the phrasings (all are replaced), the answer, the link, or turn it off."""
    fields = body.model_dump(exclude_unset=True)
    return await svc.curated.update(
        principal, kb_id, answer_id, questions=fields.get("questions"),
        answer=fields.get("answer"), link=fields.get("link"),
        clear_link="link" in fields and fields["link"] is None, enabled=fields.get("enabled"),
    )  # fmt: skip


@router.delete("/{answer_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(kb_id: str, answer_id: str, principal: Auth, svc: Svc) -> None:
    await svc.curated.delete(principal, kb_id, answer_id)
