"""Request and response bodies. Requests forbid unknown fields, so typos fail loudly."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """No string anywhere in a body may hold U+0000 (see ``api/nul_guard.py``) or a lone
        surrogate (JSON's ``"\\ud800"``: not a character, it cannot be stored as UTF-8)."""
        bad = _first_bad(data)
        if bad == "\x00":
            raise ValueError("text may not contain the NUL character (U+0000)")
        if bad is not None:
            raise ValueError("text may not contain a lone surrogate (U+D800 to U+DFFF)")
        return data


_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _first_bad(value: Any) -> str | None:
    if isinstance(value, str):
        found = _BAD_CHARS.search(value)
        return found.group() if found else None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _first_bad(k) or _first_bad(v)
            if bad is not None:
                return bad
        return None
    if isinstance(value, list | tuple):
        for v in value:
            bad = _first_bad(v)
            if bad is not None:
                return bad
    return None


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- auth -------------------------------------------------------------------------------


class LoginIn(Request):
    tenant: str = Field(description="The tenant's slug.", max_length=64)
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)
    device: str | None = Field(None, max_length=200, description="A label for this session.")


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    token_id: str
    expires_at: datetime
    user_id: str
    tenant_id: str


class SessionOut(BaseModel):
    id: str
    device: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    current: bool


class PasswordIn(Request):
    current_password: str | None = Field(None, max_length=256)
    new_password: str = Field(max_length=256)


class IssueTokenIn(Request):
    device: str | None = Field(None, max_length=200)


# -- users ------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    kind: str
    role: str
    avatar_url: str | None
    disabled: bool
    created_at: datetime


class UserCreateIn(Request):
    username: str = Field(max_length=64)
    display_name: str | None = Field(None, max_length=200)
    kind: Literal["human", "bot", "visitor"] = "human"
    role: Literal["owner", "admin", "agent", "member", "bot", "visitor"] | None = None
    password: str | None = Field(None, max_length=256)
    avatar_url: str | None = Field(None, max_length=500)


def _named(value: str | None) -> str:
    """Left out, a display name stays as it is; it cannot be null (a user has a name)."""
    if value is None:
        raise ValueError("display_name cannot be null")
    return value


class UserUpdateIn(Request):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    avatar_url: str | None = Field(None, max_length=500)
    role: Literal["owner", "admin", "agent", "member", "bot", "visitor"] | None = None
    disabled: bool | None = None

    _display_name = field_validator("display_name")(_named)


class MeUpdateIn(Request):
    display_name: str | None = Field(None, min_length=1, max_length=200)
    avatar_url: str | None = Field(None, max_length=500)

    _display_name = field_validator("display_name")(_named)


class PresenceOut(BaseModel):
    online: bool
    devices: int
    last_seen: datetime | None


class ApiKeyIn(Request):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1, max_length=10)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="Shown once; only its hash is stored.")


# -- conversations ----------------------------------------------------------------------


class ConversationCreateIn(Request):
    kind: Literal["direct", "group"]
    user_id: str | None = Field(None, max_length=26, description="direct: the other user.")
    title: str | None = Field(None, max_length=200, description="group: its title.")
    member_ids: list[str] = Field(default_factory=list, max_length=1000)


class MeInConversation(BaseModel):
    role: str
    muted: bool
    last_read_seq: int
    unread: int


class ConversationOut(BaseModel):
    id: str
    kind: str
    title: str | None
    announcement: str | None
    created_by: str | None
    last_seq: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    me: MeInConversation | None = None
    member_count: int | None = None
    last_message: MessageOut | None = None


class ConversationUpdateIn(Request):
    title: str | None = Field(None, max_length=200)
    announcement: str | None = Field(None, max_length=4000)


class MembersAddIn(Request):
    user_ids: list[str] = Field(min_length=1, max_length=1000)


class MemberOut(BaseModel):
    user_id: str
    role: str
    muted: bool
    last_read_seq: int
    joined_at: datetime


class MemberRoleIn(Request):
    role: Literal["owner", "admin", "member"]


class SettingsIn(Request):
    muted: bool


class ReadIn(Request):
    seq: int = Field(ge=0)


class ReadOut(BaseModel):
    conversation_id: str
    last_read_seq: int
    unread: int


class ReceiptOut(BaseModel):
    user_id: str
    last_read_seq: int


class TypingIn(Request):
    state: Literal["typing", "stopped"] = "typing"


# -- messages ---------------------------------------------------------------------------


class FileOut(BaseModel):
    id: str
    conversation_id: str
    uploader_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int
    sender_id: str | None
    client_msg_id: str | None
    kind: str
    text: str | None
    data: dict[str, Any] | None
    file: FileOut | None
    reply_to_id: str | None
    mentions: list[str]
    mention_all: bool
    created_at: datetime
    edited_at: datetime | None
    recalled: bool
    recalled_at: datetime | None


class MessageIn(Request):
    kind: Literal["text", "image", "file", "card", "system"] = "text"
    text: str | None = None
    data: dict[str, Any] | None = None
    file_id: str | None = Field(None, max_length=26)
    reply_to_id: str | None = Field(None, max_length=26)
    mentions: list[str] = Field(default_factory=list, max_length=100)
    mention_all: bool = False
    client_msg_id: str | None = Field(
        None, min_length=1, max_length=100,
        description="Your id for this message; resending it returns the stored message.",
    )  # fmt: skip


class MessageEditIn(Request):
    text: str | None = None
    data: dict[str, Any] | None = None


class HistoryOut(BaseModel):
    messages: list[MessageOut]
    has_more: bool


class SearchHit(BaseModel):
    message: MessageOut
    highlights: list[list[int]]


class SearchOut(BaseModel):
    results: list[SearchHit]
    has_more: bool
    query_tokens: list[str]


class EventOut(BaseModel):
    type: str
    event: str
    id: int | None
    conversation_id: str | None = None
    data: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    cursor: int
    has_more: bool


ConversationOut.model_rebuild()
