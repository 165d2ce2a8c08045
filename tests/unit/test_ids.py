"""Ids: 26-character ULIDs that sort by creation time and never repeat."""

from __future__ import annotations

import time

from warbler.ids import new_id

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_an_id_is_26_crockford_base32_characters():
    value = new_id()
    assert len(value) == 26 and set(value) <= CROCKFORD


def test_ids_made_later_sort_later():
    made = []
    for _ in range(5):
        made.append(new_id())
        time.sleep(0.002)  # ids within one millisecond are ordered only by their random part
    assert made == sorted(made)


def test_ids_start_with_the_creation_time():
    before = int(time.time() * 1000)
    value = new_id()
    after = int(time.time() * 1000)
    millis = 0
    for ch in value[:10]:  # the first 10 characters hold the 48-bit millisecond time
        millis = millis * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(ch)
    assert before <= millis <= after


def test_ids_are_unique():
    many = [new_id() for _ in range(20_000)]
    assert len(set(many)) == len(many)
