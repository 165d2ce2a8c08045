"""schemathesis over the whole OpenAPI spec: no request, valid or not, gets a 5xx, and no
answer carries anything of another tenant.

The app serves on a real socket with two seeded tenants (``world`` from
test_tenant_isolation.py: tenant B holds messages, files, webhooks, bots, knowledge bases,
tools, support conversations and a data export, all carrying markers). Every operation of
``/api/v1/openapi.json`` gets generated requests (schema-valid and schema-breaking ones) as
tenant A's owner and as a plain member of A, with path ids drawn from A's real ids, B's
real ids and whatever schemathesis makes up. Examples per operation are bounded
(``WARBLER_SCHEMATHESIS_EXAMPLES``, default 6) so the run stays within minutes on 2 cores;
``derandomize`` makes a failure reproducible.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import backend_settings
from tests.integration.test_ai_replies import serving
from tests.integration.test_tenant_isolation import MARKERS, PUBLIC_IDS
from tests.integration.test_tenant_isolation import mcp_server as mcp_server  # a fixture
from tests.integration.test_tenant_isolation import world as _world  # the "world" fixture

EXAMPLES = int(os.environ.get("WARBLER_SCHEMATHESIS_EXAMPLES", "6"))
MEMBER_EXAMPLES = max(1, EXAMPLES // 3)

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    # Outbound calls (tools, URL ingestion, model providers) stay on this host and give up
    # fast; bots of A may be asked things by generated requests.
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allowed_hosts=["127.0.0.1"], webhook_max_attempts=2,
        ai_request_timeout_seconds=2.0, ai_idle_timeout_seconds=1.0, ai_max_retries=0,
        ai_user_messages_per_minute=0, ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


async def test_no_operation_answers_5xx_or_leaks_another_tenant(app, services, world):
    spec = app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    a = world.a_tenant
    member = await a.user(f"member-{random.randrange(10**6)}")
    secrets = [
        v for f in fields(world.b_ids)
        if (v := getattr(world.b_ids, f.name)) and f.name.endswith("id")
        and f.name not in PUBLIC_IDS
    ] + [world.b_tenant_id]  # fmt: skip
    a_ids = [world.a_owner.id, member.id, world.a_kb_id, a.id]
    pool = sorted(set(a_ids + secrets))
    loop = asyncio.get_running_loop()

    def token_of(user_id: str) -> str:
        """A fresh token per request: a generated logout or password change revokes it."""
        issued = asyncio.run_coroutine_threadsafe(services.auth.issue_token(a.id, user_id), loop)
        return str(issued.result(10)["access_token"])

    async with serving(app) as ws_url:
        base = ws_url.replace("ws://", "http://").removesuffix("/api/v1/ws")
        failures = await asyncio.to_thread(
            fuzz, schema, base, pool, secrets,
            [(world.a_owner.id, "owner", EXAMPLES), (member.id, "member", MEMBER_EXAMPLES)],
            token_of,
        )  # fmt: skip
    assert not failures, f"{len(failures)} failing requests:\n" + "\n".join(failures[:40])


def fuzz(
    schema: Any,
    base: str,
    pool: list[str],
    secrets: list[str],
    callers: list[tuple[str, str, int]],
    token_of: Any,
) -> list[str]:
    failures: list[str] = []
    session = requests.Session()
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 50, "the whole spec is loaded"
    for user_id, role, examples in callers:
        for op in operations:
            check = _checker(op, role, lambda u=user_id: token_of(u), base, session, pool,
                             secrets, failures)  # fmt: skip
            run = hsettings(
                max_examples=examples, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
            )(given(case=_strategy(op), data=st.data())(check))  # fmt: skip
            try:
                run()
            except Exception as exc:  # generation itself failed: report, do not hide
                if "Unsatisfiable" not in type(exc).__name__:
                    failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {exc}")
    return failures


def _strategy(op: Any) -> Any:
    return st.one_of(
        op.as_strategy(generation_mode=GenerationMode.POSITIVE),
        op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


def _checker(
    op: Any, role: str, token: Any, base: str, session: requests.Session, pool: list[str],
    secrets: list[str], failures: list[str],
) -> Any:  # fmt: skip
    """One generated request of ``op``: path ids swapped (sometimes) for real ones of A or B,
    sent with a fresh token, its answer checked."""

    def check(case: Any, data: Any) -> None:
        for name in list(case.path_parameters or {}):
            if name.endswith("_id") and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(pool))
        headers = {"Authorization": f"Bearer {token()}"}
        response = case.call(base_url=base, session=session, headers=headers, timeout=30)
        where = f"{op.method.upper()} {op.path} as {role} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {_body(response)[:300]}\n  {_curl(case)}")
        leaked = leaks(response, secrets)
        if leaked:
            failures.append(f"{where} leaked {leaked}\n  {_curl(case)}")

    return check


def leaks(response: Any, secrets: list[str]) -> list[str]:
    """Tenant B's markers in any answer; B's ids in a successful one (a refusal may echo
    the id it was given, which is the caller's own input)."""
    text = _body(response)
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            # Search echoes the query's own words: the caller's, not B's.
            body.pop("query_tokens", None)
            body.pop("query", None)
            text = json.dumps(body, ensure_ascii=False)
    found = [m for m in MARKERS if m.lower() in text.lower()]
    if response.status_code < 300:
        found += [s for s in secrets if s in text]
    return found


def _body(response: Any) -> str:
    return bytes(response.content or b"").decode("utf-8", "replace")


def _curl(case: Any) -> str:
    try:
        return str(case.as_curl_command())
    except Exception:
        return f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:500]
