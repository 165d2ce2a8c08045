"""Password policy and hashing."""

from __future__ import annotations

import pytest

from warbler.errors import InvalidRequest
from warbler.security.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_policy,
    hash_password,
    verify_password,
)


@pytest.mark.parametrize("password", ["", "short", "x" * (MIN_LENGTH - 1), "x" * (MAX_LENGTH + 1)])
def test_passwords_outside_the_length_policy_are_refused(password):
    with pytest.raises(InvalidRequest) as err:
        check_policy(password)
    assert err.value.details["field"] == "password"
    assert err.value.details["rule"] in ("too_short", "too_long")
    with pytest.raises(InvalidRequest):
        hash_password(password)


@pytest.mark.parametrize(
    "password", ["xkcd-936 ok", "密码也可以是中文的", ("abcdefgh" * MAX_LENGTH)[:MAX_LENGTH]]
)
def test_passwords_inside_the_policy_are_accepted(password):
    check_policy(password)


def test_a_hash_verifies_its_password_only():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert hash_password("correct horse battery") != stored  # salted


def test_no_hash_or_a_broken_hash_never_verifies():
    assert not verify_password(None, "anything at all")
    assert not verify_password("not-a-hash", "anything at all")
    assert not verify_password("", "")
