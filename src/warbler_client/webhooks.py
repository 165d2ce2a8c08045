"""Verify Warbler webhook deliveries on the receiving side (stdlib only).

Warbler signs every delivery with ``X-Warbler-Signature: v1=<hex>``, the HMAC-SHA256 of
``"<X-Warbler-Timestamp>." + <raw request body>`` under the webhook's secret::

    from warbler_client.webhooks import verify_signature

    ok = verify_signature(
        secret, raw_body,
        request.headers["X-Warbler-Timestamp"], request.headers["X-Warbler-Signature"],
    )

Verify the raw bytes as received, before parsing the JSON: re-encoding changes them.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(secret: str, body: bytes, timestamp: str) -> str:
    """The signature Warbler sends for ``body`` at ``timestamp``: ``v1=<hex digest>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when ``signature`` (the ``X-Warbler-Signature`` header) was made with ``secret``
    over exactly ``body`` and ``timestamp``, and the timestamp is within
    ``tolerance_seconds`` of ``now`` (unix seconds; default: the clock), which stops an
    attacker replaying an old delivery. The header may list several comma-separated
    signatures; any valid ``v1`` one is enough. Comparison is constant-time."""
    if not isinstance(timestamp, str) or not timestamp.isascii() or not timestamp.isdigit():
        return False
    sent_at = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = compute_signature(secret, body, timestamp).encode()
    valid = False
    for candidate in signature.replace(" ", ",").split(","):
        if candidate.startswith(f"{SIGNATURE_VERSION}="):
            # No early exit: the time taken does not depend on which candidate matched.
            valid |= hmac.compare_digest(candidate.encode(), expected)
    return valid
