"""A tenant's patterns and keywords: what is refused when saved, and how they match."""

from __future__ import annotations

import typing

import pytest

from warbler.api.redaction import Detector
from warbler.config import RedactionDetector
from warbler.errors import InvalidRequest
from warbler.security.redaction.custom import PatternTimeout, compile_pattern
from warbler.security.redaction.detectors import DETECTORS
from warbler.security.redaction.errors import RedactionBlocked
from warbler.security.redaction.policy import checked
from warbler.security.redaction.scanner import Scanner


def policy(**fields):
    values = {"mode": "redact", "detectors": None, "patterns": [], "keywords": [],
              "restore": True, **fields}  # fmt: skip
    return checked(**values)


def test_the_detector_names_are_the_same_everywhere():
    assert set(typing.get_args(Detector)) == set(DETECTORS)
    assert typing.get_args(RedactionDetector) == DETECTORS


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("EMP-(\\d{6}", "does not compile"),
        ("a*", "empty string"),
        ("(a|aa)+b", "backtracks catastrophically"),
        ("(\\w+\\s?)+$", "backtracks catastrophically"),
        ("x" * 501, "at most 500"),
    ],
)
def test_a_bad_pattern_is_refused_with_the_field_named(pattern, problem):
    with pytest.raises(InvalidRequest, match=problem) as caught:
        policy(patterns=[{"name": "emp", "pattern": pattern}])
    assert caught.value.details["field"] == "patterns[0].pattern"


def test_pattern_names_are_checked():
    for name in ("", "1abc", "has space", "PHONE", "x" * 25):
        with pytest.raises(InvalidRequest) as caught:
            policy(patterns=[{"name": name, "pattern": "EMP-\\d{6}"}])
        assert caught.value.details["field"] == "patterns[0].name"
    with pytest.raises(InvalidRequest, match="taken"):
        policy(patterns=[{"name": "emp", "pattern": "a"}, {"name": "EMP", "pattern": "b"}])


def test_unknown_detectors_and_modes_are_refused():
    with pytest.raises(InvalidRequest, match="unknown detectors"):
        policy(detectors=["cn_mobile", "passport"])
    with pytest.raises(InvalidRequest, match="mode"):
        policy(mode="maybe")


def test_patterns_and_keywords_find_their_text_with_their_own_labels():
    p = policy(
        detectors=["email"],
        patterns=[{"name": "employee_id", "pattern": "EMP-\\d{6}"}],
        keywords=["Project Falcon", "蓝海计划", "Apollo", "project falcon"],
    )
    assert p.keywords == ("Project Falcon", "蓝海计划", "Apollo")  # de-duplicated
    scanner = p.scanner()
    text = "EMP-004211 在做蓝海计划和PROJECT FALCON，Apollonia 不算, apollo 算; a@b.example 13812345678"
    found = [(f.detector, f.value) for f in scanner.find(text)]
    assert found == [
        ("pattern:employee_id", "EMP-004211"),
        ("keyword", "蓝海计划"),
        ("keyword", "PROJECT FALCON"),
        ("keyword", "apollo"),
        ("email", "a@b.example"),
    ]  # not the mobile number: its detector is off
    from warbler.security.redaction.vault import Vault

    redacted, _ = Vault().redact(text, scanner)
    assert redacted.startswith("[EMPLOYEE_ID_1] 在做[KEYWORD_1]和[KEYWORD_2]")


def test_a_pattern_that_times_out_at_run_time_fails_closed():
    slow = compile_pattern("slow", "(a|aa)+b", "p", probe=False)
    scanner = Scanner(patterns=[slow])
    with pytest.raises(PatternTimeout):
        scanner.find("a" * 5000)


def test_the_blocked_message_names_what_was_found_in_the_users_language():
    exc = RedactionBlocked(["cn_mobile", "email", "pattern:employee_id", "cn_mobile"], "zh")
    assert exc.code == "pii_blocked" and exc.details == {
        "detectors": ["cn_mobile", "email", "pattern:employee_id"]
    }
    assert "手机号、邮箱地址、employee_id" in exc.user_message("zh")
    assert "a mobile number, an email address, employee_id" in exc.user_message("en")
