"""Envelope encryption: values bound to their tenant and purpose, keys wrapped under the master
key (current or previous), legacy secrets still open, and the blind search index."""

from __future__ import annotations

import os
import secrets

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warbler.search.tokenize import tokens
from warbler.security.crypto import SecretBox, SecretError
from warbler.security.encryption import blind_index, values
from warbler.security.encryption.context import (
    KeyUnavailable,
    NoTenantContext,
    WrongTenant,
    bound_tenant,
)
from warbler.security.encryption.keycache import CACHE, DATA, SEARCH, DataKey
from warbler.security.encryption.master import MasterKeys, fingerprint
from warbler.security.encryption.sealer import Sealer


def tenant_with_key(purpose: str = DATA, version: int = 1) -> tuple[str, DataKey]:
    tenant = "T" + secrets.token_hex(6)
    return tenant, add_key(tenant, purpose, version)


def add_key(tenant: str, purpose: str = DATA, version: int = 1) -> DataKey:
    secret = os.urandom(32)
    key = DataKey(secrets.token_hex(4), tenant, purpose, version, secret, AESGCM(secret))
    CACHE.put(key, active=True)
    return key


def test_a_value_round_trips_and_carries_its_key_id_not_its_text():
    tenant, key = tenant_with_key()
    with bound_tenant(tenant):
        sealed = values.encrypt("我想申请退款 refund please".encode(), "messages.text")
    assert sealed.startswith(f"enc1:{key.kid}:")
    assert "refund" not in sealed and values.key_id(sealed) == key.kid
    assert values.decrypt(sealed, "messages.text").decode() == "我想申请退款 refund please"
    # Random nonces: the same text twice gives different ciphertexts.
    with bound_tenant(tenant):
        assert values.encrypt(b"same", "p") != values.encrypt(b"same", "p")


def test_encrypting_with_no_tenant_bound_fails_closed():
    with pytest.raises(NoTenantContext):
        values.encrypt(b"body", "messages.text")


def test_a_value_moved_to_another_column_does_not_decrypt():
    tenant, _ = tenant_with_key()
    with bound_tenant(tenant):
        sealed = values.encrypt(b"secret body", "messages.text")
    with pytest.raises(values.DecryptionFailed):
        values.decrypt(sealed, "events.payload")


def test_a_value_read_while_acting_for_another_tenant_fails():
    alice, _ = tenant_with_key()
    bob, _ = tenant_with_key()
    with bound_tenant(alice):
        sealed = values.encrypt(b"alice's message", "messages.text")
    with bound_tenant(bob), pytest.raises(WrongTenant):
        values.decrypt(sealed, "messages.text")
    with bound_tenant(alice):
        assert values.decrypt(sealed, "messages.text") == b"alice's message"


def test_a_tampered_value_does_not_decrypt():
    tenant, _ = tenant_with_key()
    with bound_tenant(tenant):
        sealed = values.encrypt(b"pay 10 yuan", "messages.text")
    body = sealed[-10:]
    flipped = sealed[:-10] + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(values.DecryptionFailed):
        values.decrypt(flipped, "messages.text")


def test_an_unknown_key_id_is_reported_not_guessed():
    with pytest.raises(KeyUnavailable):
        values.decrypt("enc1:zzzzzzzz:AAAA", "messages.text")


def test_old_keys_decrypt_what_they_wrote_and_new_writes_use_the_newest():
    tenant, first = tenant_with_key()
    with bound_tenant(tenant):
        old = values.encrypt(b"before rotation", "messages.text")
        second = add_key(tenant, version=2)
        new = values.encrypt(b"after rotation", "messages.text")
    assert values.key_id(old) == first.kid and values.key_id(new) == second.kid
    assert values.decrypt(old, "messages.text") == b"before rotation"
    assert values.decrypt(new, "messages.text") == b"after rotation"


def test_keys_unwrap_under_the_current_or_the_previous_master_key():
    old, new = os.urandom(32), os.urandom(32)
    before = MasterKeys(old)
    wrapped, master_id = before.wrap("T1", DATA, "abcdefgh", b"k" * 32)
    assert master_id == fingerprint(old) and b"k" * 32 not in wrapped.encode()
    during = MasterKeys(new, old)
    assert during.unwrap("T1", DATA, "abcdefgh", wrapped, master_id) == b"k" * 32
    # A wrapped key is bound to its tenant, purpose and id.
    with pytest.raises(KeyUnavailable):
        during.unwrap("T2", DATA, "abcdefgh", wrapped, master_id)
    after = MasterKeys(new)
    with pytest.raises(KeyUnavailable, match="WARBLER_SECRET_KEY_PREVIOUS"):
        after.unwrap("T1", DATA, "abcdefgh", wrapped, master_id)


def test_secrets_seal_under_the_tenant_key_and_v1_secrets_still_open():
    tenant, key = tenant_with_key()
    old_master = os.urandom(32)
    legacy = SecretBox(old_master).seal("sk-legacy-123", "ai_provider:P1:api_key")
    sealer = Sealer(MasterKeys(os.urandom(32), old_master))
    sealed = sealer.seal("sk-live-456", "ai_provider:P1:api_key", tenant_id=tenant)
    assert sealed.startswith(f"enc1:{key.kid}:")
    assert sealer.open(sealed, "ai_provider:P1:api_key") == "sk-live-456"
    assert sealer.open(legacy, "ai_provider:P1:api_key") == "sk-legacy-123"
    with pytest.raises(SecretError):
        sealer.open(sealed, "ai_provider:P2:api_key")
    with pytest.raises(SecretError):
        Sealer(MasterKeys(os.urandom(32))).open(legacy, "ai_provider:P1:api_key")


# -- the blind index ---------------------------------------------------------------------


def test_the_blind_index_holds_no_word_and_matches_words_and_english_prefixes():
    key = os.urandom(32)
    text = "All refunds are processed on Fridays 我想申请退款"
    terms = blind_index.index_terms(tokens(text), key)
    assert all(len(t) == 16 and set(t) <= set("abcdefghijklmnop") for t in terms)
    joined = " ".join(terms)
    for word in ("refund", "refunds", "process", "friday", "退款", "申请"):
        assert word not in joined
        assert blind_index.query_term(word, key) in terms, word
    for absent in ("refunding", "香蕉", "款"):
        assert blind_index.query_term(absent, key) not in terms, absent
    # Sorted and de-duplicated: the order and the counts of words do not show.
    assert terms == sorted(set(terms))
    assert blind_index.index_terms(tokens("b a a"), key) == blind_index.index_terms(["a", "b"], key)


def test_the_same_word_hashes_differently_in_each_tenant():
    word = "invoice"
    assert blind_index.query_term(word, os.urandom(32)) != blind_index.query_term(
        word, os.urandom(32)
    )


def test_long_words_match_by_prefix_up_to_the_limit_and_whole_beyond_it():
    key = os.urandom(32)
    long_word = "internationalization"  # 20 characters
    terms = blind_index.index_terms([long_word], key)
    assert blind_index.query_term("international", key) in terms
    assert blind_index.query_term(long_word, key) in terms
    assert blind_index.query_term(long_word[:18], key) not in terms  # past MAX_PREFIX


def test_search_keys_are_a_purpose_of_their_own():
    tenant, data_key = tenant_with_key()
    search_key = add_key(tenant, SEARCH)
    assert CACHE.active(tenant, DATA) is data_key
    assert CACHE.active(tenant, SEARCH) is search_key
