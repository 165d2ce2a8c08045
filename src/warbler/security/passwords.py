"""Password hashing with argon2id, and the policy a new password must meet.

The policy (docs/security.md, "Access control hardening"), checked in this order:

- ``too_short``: at least ``MIN_LENGTH`` (10), where a Chinese, Japanese or Korean character
  counts twice: one carries about as much entropy as two Latin letters, so a 5-character
  Chinese passphrase is as long as a 10-letter English one.
- ``too_long``: at most ``MAX_LENGTH`` (256) characters (argon2 hashes any length; this bounds
  the work an attacker can ask for).
- ``too_repetitive``: at least 4 different characters (``aaaaaaaaaa``, ``1212121212``).
- ``contains_username``: the username (3 characters or more) does not appear in it, ignoring
  case.
- ``too_common``: not in the bundled list of common passwords
  (``common_passwords.txt.gz``: the 8,354 entries of 8 characters or more from the 20,000
  most common passwords that Django ships, compiled by Royce Williams, plus common Chinese
  ones such as ``woaini1314``), ignoring case and surrounding spaces.

A refusal is ``WeakPassword`` (HTTP 400, code ``weak_password``) whose details name the
``rule`` broken and carry the message in Chinese too (``message_zh``).
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from warbler.errors import InvalidRequest

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both paths take the same time.
_DUMMY_HASH = _hasher.hash("warbler-timing-equaliser")

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_DISTINCT = 4
MIN_USERNAME_CHECKED = 3


class WeakPassword(InvalidRequest):
    """A new password breaks the policy; ``details["rule"]`` says which rule."""

    code = "weak_password"


_MESSAGES: dict[str, tuple[str, str]] = {
    "too_short": (
        f"password is too short: at least {MIN_LENGTH} characters (a Chinese character counts "
        "as 2)",
        f"密码太短：至少 {MIN_LENGTH} 个字符（一个汉字算 2 个）",
    ),
    "too_long": (
        f"password is too long: at most {MAX_LENGTH} characters",
        f"密码太长：最多 {MAX_LENGTH} 个字符",
    ),
    "too_repetitive": (
        f"password needs at least {MIN_DISTINCT} different characters",
        f"密码至少要包含 {MIN_DISTINCT} 个不同的字符",
    ),
    "contains_username": (
        "password must not contain the username",
        "密码不能包含用户名",
    ),
    "too_common": (
        "password is too common: it is on a list of frequently used passwords",
        "密码过于常见：它在常用密码列表中",
    ),
}


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list, lowercased (read once)."""
    data = resources.files("warbler.security").joinpath("common_passwords.txt.gz").read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def strength_length(password: str) -> int:
    """The length the minimum is measured in: CJK characters count twice."""
    return sum(2 if _is_wide(ch) else 1 for ch in password)


def _is_wide(ch: str) -> bool:
    # East Asian Wide/Fullwidth letters: Han, Kana, Hangul (not fullwidth punctuation).
    return unicodedata.east_asian_width(ch) in ("W", "F") and unicodedata.category(ch)[0] == "L"


def policy_violation(password: str, *, username: str | None = None) -> str | None:
    """The first rule ``password`` breaks, or None."""
    if strength_length(password) < MIN_LENGTH:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    if len(set(password)) < MIN_DISTINCT:
        return "too_repetitive"
    lowered = password.casefold()
    if username and len(username) >= MIN_USERNAME_CHECKED and username.casefold() in lowered:
        return "contains_username"
    if lowered.strip() in common_passwords():
        return "too_common"
    return None


def check_policy(password: str, *, username: str | None = None, field: str = "password") -> None:
    """Raise ``WeakPassword`` if ``password`` breaks the policy (see the module doc)."""
    rule = policy_violation(password, username=username)
    if rule is not None:
        message, message_zh = _MESSAGES[rule]
        raise WeakPassword(
            message, details={"field": field, "rule": rule, "message_zh": message_zh}
        )


def hash_password(password: str, *, username: str | None = None) -> str:
    check_policy(password, username=username)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
