"""Bearer secrets (access tokens, API keys): random, shown once, stored only as a SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "wbt_"
API_KEY_PREFIX = "wbk_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 is right for 256-bit random secrets: nothing to brute-force, lookups stay O(1)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hmac_sha256(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
