"""The tenant's PII redaction policy (admins): read, replace, and preview on a sample text."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from warbler.api.deps import Auth, Svc
from warbler.security.redaction.custom import (
    MAX_KEYWORD_CHARS,
    MAX_KEYWORDS,
    MAX_PATTERN_CHARS,
    MAX_PATTERNS,
)
from warbler.security.redaction.detectors import DETECTORS
from warbler.security.redaction.service import MAX_PREVIEW_CHARS

router = APIRouter(prefix="/security/redaction", tags=["security"])

# The built-in detectors (``DETECTORS``; tests/unit/test_redaction_policy.py keeps them equal).
Detector = Literal["cn_id", "bank_card", "cn_mobile", "email", "phone", "ip"]


class PatternIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=24,
        description="A letter, then letters, digits or _; the placeholder's label "
        "(`employee_id` -> `[EMPLOYEE_ID_1]`).",
    )
    pattern: str = Field(
        min_length=1,
        max_length=MAX_PATTERN_CHARS,
        description="A regular expression (Python `regex` syntax; `(?i)` for any case).",
    )


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["redact", "block", "allow"] = Field(
        "redact",
        description="redact: placeholders before external models; block: refuse a question "
        "holding personal data; allow: send text as it is.",
    )
    detectors: list[Detector] | None = Field(
        None, max_length=len(DETECTORS), description="Built-in detectors; null: all of them."
    )
    patterns: list[PatternIn] = Field(default_factory=list, max_length=MAX_PATTERNS)
    keywords: list[str] = Field(
        default_factory=list,
        max_length=MAX_KEYWORDS,
        description=f"Literal words, 1 to {MAX_KEYWORD_CHARS} characters, case-insensitive.",
    )
    restore: bool = Field(True, description="Put the values back into the answer shown.")


class PolicyOut(BaseModel):
    mode: str
    detectors: list[str]
    patterns: list[dict[str, str]]
    keywords: list[str]
    restore: bool
    default: bool = Field(description="True: the tenant has no policy of its own.")
    available_detectors: list[str]
    updated_at: datetime | None


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_PREVIEW_CHARS)
    # Any of these: try them instead of the saved policy's (nothing is saved).
    mode: Literal["redact", "block", "allow"] | None = None
    detectors: list[Detector] | None = Field(None, max_length=len(DETECTORS))
    patterns: list[PatternIn] | None = Field(None, max_length=MAX_PATTERNS)
    keywords: list[str] | None = Field(None, max_length=MAX_KEYWORDS)


class FindingOut(BaseModel):
    detector: str = Field(description="A built-in detector, `pattern:<name>` or `keyword`.")
    placeholder: str
    start: int
    end: int
    value: str


class PreviewOut(BaseModel):
    mode: str
    text: str = Field(description="The text as an external model would receive it.")
    blocked: bool = Field(description="Block mode would refuse this text.")
    findings: list[FindingOut]


@router.get("", response_model=PolicyOut)
async def get_policy(principal: Auth, svc: Svc) -> dict[str, Any]:
    """The tenant's policy (or the defaults, with ``default: true``)."""
    return await svc.redaction.get(principal)


@router.put("", response_model=PolicyOut)
async def put_policy(body: PolicyIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Replace the policy (fields left out take their defaults). A pattern that does not
    compile, matches the empty string or backtracks catastrophically is refused (400)."""
    return await svc.redaction.put(principal, body.model_dump())


@router.post("/preview", response_model=PreviewOut)
async def preview(body: PreviewIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """What the policy does to ``text``; the fields besides ``text`` try a policy without
    saving it."""
    overrides = body.model_dump(exclude={"text"}, exclude_none=True)
    return await svc.redaction.preview(principal, body.text, overrides)
