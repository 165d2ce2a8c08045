"""The password policy: length (a Chinese character counts twice), variety, the username,
and the bundled list of common passwords. Each refusal names its rule, in English and Chinese."""

from __future__ import annotations

import pytest

from warbler.security.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    WeakPassword,
    check_policy,
    common_passwords,
    hash_password,
    policy_violation,
    strength_length,
)


def rule_of(password: str, username: str | None = None) -> str | None:
    return policy_violation(password, username=username)


def test_the_common_list_is_bundled_and_lowercase():
    words = common_passwords()
    assert len(words) > 8_000
    assert all(w == w.lower() and len(w) >= 8 for w in words)
    assert {"1234567890", "qwertyuiop", "woaini1314", "password123"} <= words


@pytest.mark.parametrize(
    "password",
    ["1234567890", "QwertyUiop", "password123", "  Password123 ", "woaini1314", "qq123456789"],
)
def test_common_passwords_are_refused_whatever_their_case(password):
    assert rule_of(password) == "too_common"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("", "too_short"),
        ("nine-char", "too_short"),
        ("x" * (MIN_LENGTH - 1), "too_short"),
        ("一二三四", "too_short"),  # 4 Chinese characters count as 8
        ("z" * (MAX_LENGTH + 1), "too_long"),
        ("aaaaaaaaaaaa", "too_repetitive"),
        ("abababababab", "too_repetitive"),
    ],
)
def test_short_long_and_repetitive_passwords_are_refused(password, rule):
    assert rule_of(password) == rule


def test_a_chinese_character_counts_twice_toward_the_minimum():
    assert strength_length("密码") == 4
    assert strength_length("ab密码") == 6
    assert strength_length("，。") == 2  # fullwidth punctuation is not a letter
    assert rule_of("我家小猫叫咪咪") is None  # 7 characters, 14 toward the minimum
    assert rule_of("我的猫叫a") == "too_short"  # 4 x 2 + 1 = 9


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "我家小猫叫咪咪", "Tr0ub4dor&3x", "马上就要下雨了 bring umbrella"],
)
def test_good_passwords_in_english_and_chinese_pass(password):
    check_policy(password, username="ann")
    assert hash_password(password, username="ann").startswith("$argon2id$")


def test_a_password_containing_the_username_is_refused_ignoring_case():
    assert rule_of("my name is Alexander!", username="alexander") == "contains_username"
    assert rule_of("张三丰的密码很长很长", username="张三丰") == "contains_username"
    # Names shorter than 3 characters are too likely to occur by chance.
    assert rule_of("bo knows passwords", username="bo") is None


def test_a_refusal_names_the_rule_and_says_it_in_chinese_too():
    with pytest.raises(WeakPassword) as err:
        check_policy("1234567890", field="new_password")
    assert err.value.code == "weak_password"
    assert err.value.details["field"] == "new_password"
    assert err.value.details["rule"] == "too_common"
    assert "常用密码" in err.value.details["message_zh"]
    with pytest.raises(WeakPassword):
        hash_password("short")
