"""Secrets at rest (provider API keys, tool auth headers): AES-256-GCM under one master key.

A sealed value reads ``v1:<base64url(nonce ‖ ciphertext ‖ tag)>``. The *context* (for example
``"provider:<id>:api_key"``) is bound in as associated data, so a sealed value copied into
another row or column fails to open instead of leaking there.

The master key comes from ``WARBLER_SECRET_KEY`` or, on the embedded default, from
``DATA_DIR/secret.key``, created once with mode 0600. Every node of a cluster needs the same key.

New secrets are sealed under each tenant's data key instead (``security/encryption/``,
``enc1:`` values); ``v1:`` values written before still open, and ``warbler keys
rotate-master`` or ``warbler keys reencrypt`` re-seal them under the tenant's key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warbler.config import Settings

VERSION = "v1:"
NONCE_BYTES = 12


class SecretError(Exception):
    """A sealed value could not be opened: wrong key, wrong context, or tampered."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        if not sealed.startswith(VERSION):
            raise SecretError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(VERSION) :])
            return self._aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()
            ).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretError("the sealed value does not open with this key and context") from exc


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except binascii.Error as exc:
        raise ValueError("WARBLER_SECRET_KEY is not base64") from exc
    if len(key) != 32:
        raise ValueError("WARBLER_SECRET_KEY must be the base64 of 32 bytes")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


KEY_FILE = "secret.key"
PREVIOUS_KEY_FILE = "secret.key.previous"


def master_key(settings: Settings) -> bytes:
    """The node's master key: from the setting, else from (or newly into) the key file."""
    if settings.secret_key:
        return decode_key(settings.secret_key)
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process on this data dir created it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_key_text() + "\n")
    return decode_key(path.read_text())


def previous_master_key(settings: Settings) -> bytes | None:
    """The master key being rotated out, if any: ``WARBLER_SECRET_KEY_PREVIOUS``, else the
    file ``DATA_DIR/secret.key.previous`` that ``warbler keys rotate-master --generate``
    leaves behind."""
    if settings.secret_key_previous:
        return decode_key(settings.secret_key_previous)
    path = Path(settings.data_dir) / PREVIOUS_KEY_FILE
    if not settings.secret_key and path.exists():
        return decode_key(path.read_text())
    return None


def load_box(settings: Settings) -> SecretBox:
    """A SecretBox under the node's master key (``v1:`` values, from before tenant keys)."""
    return SecretBox(master_key(settings))
