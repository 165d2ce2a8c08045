"""Domain errors: each carries a stable code; the API maps the class to an HTTP status."""

from __future__ import annotations

from typing import Any


class WarblerError(Exception):
    """Base of every error a user can be shown. ``code`` is stable and documented."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(WarblerError):
    code = "invalid_request"


class Unauthenticated(WarblerError):
    code = "unauthenticated"


class Forbidden(WarblerError):
    code = "forbidden"


class NotFound(WarblerError):
    code = "not_found"


class Conflict(WarblerError):
    code = "conflict"


class TooLarge(WarblerError):
    code = "too_large"


class UnsupportedType(WarblerError):
    code = "unsupported_type"


class RateLimited(WarblerError):
    code = "rate_limited"


class QuotaExceeded(RateLimited):
    """An AI limit was reached (answers per minute, tokens per month). ``details``: ``scope``
    (tenant | bot | user), ``limit_name`` (messages_per_minute | tokens_per_month), ``limit``,
    ``retry_after_seconds``."""

    code = "quota_exceeded"


class Gone(WarblerError):
    """The thing existed but can no longer be acted on (recalled message, expired window)."""

    code = "gone"
