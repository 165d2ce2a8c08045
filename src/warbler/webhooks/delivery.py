"""The webhook delivery job: build the signed body for one event and POST it.

A 2xx answer is a delivery; any other status, a timeout or a connection error fails the
attempt and the job runner retries it with backoff. Redirects are not followed (a redirect
could lead to an address the SSRF rule forbids).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from warbler import __version__
from warbler.clock import utcnow
from warbler.config import Settings
from warbler.im.views import message_view
from warbler.jobs.runner import JobFailure, RetryPolicy
from warbler.security.secrets import hmac_sha256
from warbler.store.db import Database
from warbler.store.models import Event, Job, Message, StoredFile, Webhook
from warbler.webhooks.targets import TargetRejected, parse_url, pinned, resolve_public

USER_AGENT = f"Warbler-Webhooks/{__version__}"
_ERROR_BODY_CHARS = 200


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    return "v1=" + hmac_sha256(secret, f"{timestamp}.".encode() + body)


def retry_policy(settings: Settings) -> RetryPolicy:
    # The runner renews a lease every third of its length while the attempt runs, so the
    # lease need not outlast the attempt: it only bounds how long a dead node's job waits.
    return RetryPolicy(
        base_seconds=settings.webhook_backoff_base_seconds,
        max_seconds=settings.webhook_backoff_max_seconds,
        lease_seconds=settings.job_lease_seconds,
    )


class WebhookDeliverer:
    """The ``webhook.delivery`` handler; also a Worker that owns the pooled HTTP client."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
                # The SSRF rule is ours to apply; an HTTP(S)_PROXY from the environment
                # would send every delivery through a third party instead.
                trust_env=False,
            )
        return self._client

    async def __call__(self, job: Job) -> dict[str, Any]:
        webhook_id = job.payload["webhook_id"]
        async with self.db.read() as s:
            hook = await s.scalar(
                select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == job.tenant_id)
            )
            if hook is None:
                raise JobFailure("the webhook was deleted", retry=False)
            if not hook.active:
                raise JobFailure("the webhook is inactive", retry=False)
            event = await s.scalar(
                select(Event).where(
                    Event.id == job.payload["event_id"], Event.tenant_id == job.tenant_id
                )
            )
            if event is None:
                raise JobFailure("the event is no longer in the event log", retry=False)
            data = event.payload
            if event.message_id:
                found = (
                    await s.execute(
                        select(Message, StoredFile)
                        .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                        .where(Message.id == event.message_id)
                    )
                ).first()
                if found is None:
                    raise JobFailure("the message no longer exists", retry=False)
                data = {"message": message_view(*found)}
        body = orjson.dumps(
            {
                "id": job.id,
                "type": event.type,
                "event_id": event.id,
                "tenant_id": event.tenant_id,
                "conversation_id": event.conversation_id,
                "created_at": event.created_at,
                "data": data,
            }
        )
        return await self.post(hook, job.id, event.type, body)

    async def post(
        self, hook: Webhook, delivery_id: str, event_type: str, body: bytes
    ) -> dict[str, Any]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Warbler-Event": event_type,
            "X-Warbler-Delivery": delivery_id,
            "X-Warbler-Timestamp": timestamp,
            "X-Warbler-Signature": sign(hook.secret, timestamp, body),
        }
        url = parse_url(hook.url)
        extensions: dict[str, str] = {}
        if not self.settings.webhook_allow_private_targets:
            # Checked again now: the host's DNS may have changed since the webhook was made.
            try:
                address = await resolve_public(url)
            except TargetRejected as exc:
                raise JobFailure(exc.message) from exc
            url, host_header, extensions = pinned(url, address)
            headers.update(host_header)
        request = self.client.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                response = await self.client.send(request, stream=True)
                try:
                    snippet = b"" if response.is_success else await _head(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise JobFailure(
                f"timed out after {self.settings.webhook_timeout_seconds:g}s",
                result={"status_code": None, "latency_ms": _ms(started)},
            ) from exc
        except httpx.HTTPError as exc:
            raise JobFailure(
                f"{type(exc).__name__}: {exc}".rstrip(": "),
                result={"status_code": None, "latency_ms": _ms(started)},
            ) from exc
        result: dict[str, Any] = {"status_code": response.status_code, "latency_ms": _ms(started)}
        if not response.is_success:
            text = snippet.decode("utf-8", "replace").strip()
            # The receiver's words may quote the message: they go in the result (encrypted at
            # rest), not in ``last_error`` (plain); the views show them joined.
            if text:
                result["error_detail"] = text
            raise JobFailure(f"HTTP {response.status_code}", result=result)
        result["delivered_at"] = utcnow().isoformat()
        return result


async def _head(response: httpx.Response) -> bytes:
    """The start of an error body (for last_error), without reading a huge answer."""
    out = b""
    async for chunk in response.aiter_bytes():
        out += chunk
        if len(out) >= _ERROR_BODY_CHARS:
            break
    return out[:_ERROR_BODY_CHARS]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
