"""Identified visitors: HS256 JSON Web Tokens signed by the company's backend.

The company's server (which knows who its user is) signs ``{"sub", "name", "email", "exp",
"iat"}`` with the tenant's identity secret and hands the token to its page, which passes it
to the widget (``Warbler.identify(token)``). Only HS256 is accepted: ``alg: none`` and every
other algorithm are refused, whatever the header says, so a token can never pick a weaker
check. The signature is compared in constant time. Tokens must expire, and not too far out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from warbler.errors import Unauthenticated

MAX_TOKEN_CHARS = 4096
MAX_SUB_CHARS = 200
MAX_NAME_CHARS = 100
MAX_EMAIL_CHARS = 320
# Clock skew tolerated between the company's server and ours, on exp and iat.
LEEWAY_SECONDS = 60


class InvalidIdentityToken(Unauthenticated):
    """The identity token is malformed, not HS256, or its signature does not match."""

    code = "invalid_identity_token"


class IdentityTokenExpired(Unauthenticated):
    code = "identity_token_expired"


class IdentityRequired(Unauthenticated):
    """This widget only serves visitors identified by a signed token."""

    code = "identity_required"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the company says the visitor is."""

    sub: str
    name: str | None
    email: str | None
    expires_at: int


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidIdentityToken("the identity token is not valid base64url") from exc


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidIdentityToken(f"the identity token's {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidIdentityToken(f"the identity token's {what} is not a JSON object")
    return value


def sign_identity_token(secret: str, claims: dict[str, Any]) -> str:
    """An HS256 token over ``claims`` (what a company's backend does; tests and docs use it)."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def verify_identity_token(
    token: str, secret: str, *, max_lifetime_seconds: int, now: float | None = None
) -> Identity:
    """The identity in ``token`` if it is a valid, unexpired HS256 token signed with
    ``secret``; raises ``InvalidIdentityToken`` or ``IdentityTokenExpired`` otherwise."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidIdentityToken(f"the identity token is longer than {MAX_TOKEN_CHARS} chars")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidIdentityToken("the identity token is not a JWT (header.payload.signature)")
    header = _json(parts[0], "header")
    if header.get("alg") != "HS256":
        raise InvalidIdentityToken(
            "identity tokens must be signed with HS256", details={"alg": str(header.get("alg"))}
        )
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), _b64decode(parts[2])):
        raise InvalidIdentityToken("the identity token's signature does not match")
    claims = _json(parts[1], "payload")
    return _identity(claims, max_lifetime_seconds, time.time() if now is None else now)


def _identity(claims: dict[str, Any], max_lifetime: int, now: float) -> Identity:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUB_CHARS:
        raise InvalidIdentityToken(f"the claim 'sub' must be a string of 1-{MAX_SUB_CHARS} chars")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidIdentityToken("the claim 'exp' (expiry, seconds since 1970) is required")
    if exp + LEEWAY_SECONDS <= now:
        raise IdentityTokenExpired("the identity token has expired", details={"exp": exp})
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int | float) or iat > now + LEEWAY_SECONDS):
        raise InvalidIdentityToken("the claim 'iat' is not a time in the past")
    if exp - (iat if iat is not None else now) > max_lifetime + LEEWAY_SECONDS:
        raise InvalidIdentityToken(
            f"identity tokens may live at most {max_lifetime} s (exp - iat)",
            details={"max_lifetime_seconds": max_lifetime},
        )
    return Identity(
        sub=sub,
        name=_text(claims.get("name"), MAX_NAME_CHARS, "name"),
        email=_text(claims.get("email"), MAX_EMAIL_CHARS, "email"),
        expires_at=int(exp),
    )


def _text(value: Any, limit: int, claim: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidIdentityToken(f"the claim '{claim}' must be a string of at most {limit} chars")
    return value.strip() or None
