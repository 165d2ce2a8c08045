"""schemathesis over the whole OpenAPI spec: no request, valid or not, gets a 5xx, and no
answer carries anything of another tenant.

The app serves on a real socket with two seeded tenants (``world`` from
test_tenant_isolation.py: tenant B holds messages, files, webhooks, bots, knowledge bases,
tools, support conversations and a data export, all carrying markers; tenant A has one of
each too). Every operation of ``/api/v1/openapi.json`` gets generated requests, schema-valid
and schema-breaking, as tenant A's owner and as a plain member of A. A path id is, at
random, what schemathesis made up, A's real id of that kind or B's, so requests reach past
"not found". Examples per operation are bounded (``WARBLER_SCHEMATHESIS_EXAMPLES``, default
6) so the run stays within minutes on 2 cores; ``derandomize`` makes a failure reproducible
(``WARBLER_SCHEMATHESIS_RANDOM=1`` explores other examples).

Regression tests for the 5xx it found are at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
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
from tests.integration.test_tenant_isolation import MARKERS, PUBLIC_IDS, Ids, a_victims
from tests.integration.test_tenant_isolation import mcp_server as mcp_server  # a fixture
from tests.integration.test_tenant_isolation import world as world  # a fixture

EXAMPLES = int(os.environ.get("WARBLER_SCHEMATHESIS_EXAMPLES", "6"))
# Set to explore beyond the fixed examples (a failure then prints what to replay).
RANDOM = os.environ.get("WARBLER_SCHEMATHESIS_RANDOM", "") not in ("", "0")
MEMBER_EXAMPLES = max(1, EXAMPLES // 3)
# Destructive methods last, so A's things are still there for the reads and changes.
METHOD_ORDER = {"get": 0, "put": 1, "patch": 2, "post": 3, "delete": 4}
# Path parameters named differently from the Ids field that fills them.
ALIASES = {"conversation_id": ("conversation_id", "support_conversation_id", "direct_id"),
           "user_id": ("user_id", "agent_id")}  # fmt: skip


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


@pytest.mark.slow
async def test_no_operation_answers_5xx_or_leaks_another_tenant(app, client, services, world):
    a = world.a_tenant
    member = await a.user("schemathesis-member")
    everything = {f.name for f in fields(Ids)} - {"visitor_token"}
    own = await a_victims(client, services, world, everything)
    pools = id_pools(own, world.b_ids)
    secrets = [
        v for f in fields(world.b_ids)
        if (v := getattr(world.b_ids, f.name)) and f.name.endswith("id")
        and f.name not in PUBLIC_IDS
    ] + [world.b_tenant_id]  # fmt: skip
    loop = asyncio.get_running_loop()

    def token_of(user_id: str) -> str:
        """A fresh token per request: a generated logout or password change revokes it."""
        issued = asyncio.run_coroutine_threadsafe(services.auth.issue_token(a.id, user_id), loop)
        return str(issued.result(10)["access_token"])

    schema = schemathesis.openapi.from_dict(app.openapi())
    fuzzer = Fuzzer(schema, pools, secrets, token_of)
    async with serving(app) as ws_url:
        fuzzer.base = ws_url.replace("ws://", "http://").removesuffix("/api/v1/ws")
        await asyncio.to_thread(fuzzer.run, world.a_owner.id, "owner", EXAMPLES)
        await asyncio.to_thread(fuzzer.run, member.id, "member", MEMBER_EXAMPLES)
    failures = fuzzer.failures
    assert not failures, f"{len(failures)} failing requests:\n" + "\n".join(failures[:40])
    # Not a vacuous run: most operations were really exercised, not refused at the door.
    answered = {op for op, status in fuzzer.seen if status < 300}
    assert len(fuzzer.seen_ops) > 100, "the whole spec was loaded"
    assert len(answered) >= len(fuzzer.seen_ops) // 2, (
        f"only {len(answered)} of {len(fuzzer.seen_ops)} operations ever answered 2xx"
    )


def id_pools(own: Ids, b: Ids) -> dict[str, list[str]]:
    """For each path parameter name: A's and B's real ids of that kind."""
    pools: dict[str, list[str]] = {}
    for f in fields(Ids):
        for param in [f.name, *[p for p, names in ALIASES.items() if f.name in names]]:
            values = [v for v in (getattr(own, f.name), getattr(b, f.name)) if v]
            pools.setdefault(param, []).extend(values)
    return {k: sorted(set(v)) for k, v in pools.items() if v}


class Fuzzer:
    def __init__(
        self, schema: Any, pools: dict[str, list[str]], secrets: list[str],
        token_of: Callable[[str], str],
    ) -> None:  # fmt: skip
        self.schema = schema
        self.pools = pools
        self.secrets = secrets
        self.token_of = token_of
        self.base = ""
        self.session = requests.Session()
        self.failures: list[str] = []
        self.seen: set[tuple[str, int]] = set()
        self.seen_ops: set[str] = set()

    def run(self, user_id: str, role: str, examples: int) -> None:
        operations = [r.ok() for r in self.schema.get_all_operations()]
        operations.sort(key=lambda op: METHOD_ORDER.get(op.method.lower(), 5))
        for op in operations:
            name = f"{op.method.upper()} {op.path}"
            self.seen_ops.add(name)
            strategy = st.one_of(
                op.as_strategy(generation_mode=GenerationMode.POSITIVE),
                op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )
            test = given(case=strategy, data=st.data())(self._check(name, role, user_id))
            run = hsettings(
                max_examples=examples, deadline=None, database=None, derandomize=not RANDOM,
                suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
            )(test)  # fmt: skip
            try:
                run()
            except Exception as exc:  # generation failed: report it, never hide it
                if "Unsatisfiable" not in type(exc).__name__:
                    self.failures.append(f"{name}: {type(exc).__name__}: {exc}")

    def _check(self, name: str, role: str, user_id: str) -> Callable[[Any, Any], None]:
        def check(case: Any, data: Any) -> None:
            for param in list(case.path_parameters or {}):
                pool = self.pools.get(param)
                if pool and data.draw(st.booleans()):
                    case.path_parameters[param] = data.draw(st.sampled_from(pool))
            headers = {"Authorization": f"Bearer {self.token_of(user_id)}"}
            response = case.call(base_url=self.base, session=self.session, headers=headers,
                                 timeout=30)  # fmt: skip
            self.seen.add((name, response.status_code))
            where = f"{name} as {role} -> {response.status_code}"
            if response.status_code >= 500:
                self.failures.append(f"{where}: {_body(response)[:300]}\n  {_curl(case)}")
            leaked = leaks(response, self.secrets)
            if leaked:
                self.failures.append(f"{where} leaked {leaked}\n  {_curl(case)}")

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
    text = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"
    return text[:500]


# -- regressions: 5xx answers schemathesis found, each now a 4xx ---------------------------


async def test_quota_numbers_beyond_what_the_store_holds_are_refused(client, make_tenant):
    owner = await (await make_tenant()).user("olive", role="owner")
    for body in ({"tokens_per_month": 2**63}, {"messages_per_minute": 2**31},
                 {"tokens_per_month": 10**30}):  # fmt: skip
        r = await client.put("/ai/quotas", json=body, headers=owner.headers)
        assert r.status_code == 422, (body, r.text)
    r = await client.post("/bots", json={"name": "b", "quotas": {"tokens_per_month": 2**64}},
                          headers=owner.headers)  # fmt: skip
    assert r.status_code == 422, r.text
    r = await client.put("/ai/quotas", json={"tokens_per_month": 10**15}, headers=owner.headers)
    assert r.status_code == 200, r.text


async def test_offsets_and_seqs_past_what_the_store_holds_are_refused(client, make_tenant):
    owner = await (await make_tenant()).user("olive", role="owner")
    conv = (await client.post("/conversations", json={"kind": "group", "title": "g"},
                              headers=owner.headers)).json()["id"]  # fmt: skip
    kb = (await client.post("/kb", json={"name": "k"}, headers=owner.headers)).json()["id"]
    huge = 3360659622640606372691968
    for path, params in (
        ("/users", {"offset": huge}), ("/conversations", {"offset": huge}),
        (f"/kb/{kb}/documents", {"offset": huge}),
        (f"/conversations/{conv}/messages", {"before_seq": huge}),
        (f"/conversations/{conv}/messages", {"after_seq": 2**63}),
    ):  # fmt: skip
        r = await client.get(path, params=params, headers=owner.headers)
        assert r.status_code == 422, (path, params, r.text)
    r = await client.get(f"/conversations/{conv}/messages", params={"after_seq": 2**63 - 1},
                         headers=owner.headers)  # fmt: skip
    assert r.status_code == 200 and r.json()["messages"] == []


async def test_a_display_name_cannot_be_set_to_null(client, make_tenant):
    t = await make_tenant()
    owner, bo = await t.user("olive", role="owner"), await t.user("bo")
    r = await client.patch("/users/me", json={"display_name": None}, headers=owner.headers)
    assert r.status_code == 422, r.text
    r = await client.patch(f"/users/{bo.id}", json={"display_name": None}, headers=owner.headers)
    assert r.status_code == 422, r.text
    r = await client.patch("/users/me", json={"avatar_url": None}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["display_name"] == "olive"


async def test_text_with_a_nul_character_is_refused_everywhere(client, make_tenant):
    """PostgreSQL cannot store U+0000 in text; SQLite can. Either way: a 4xx, never a 5xx."""
    t = await make_tenant()
    owner = await t.user("olive", role="owner")
    conv = (await client.post("/conversations", json={"kind": "group", "title": "g"},
                              headers=owner.headers)).json()["id"]  # fmt: skip
    calls = [
        ("POST", "/bots", {"json": {"name": "a\x00b"}}),
        ("PATCH", "/users/me", {"json": {"display_name": "a\x00b"}}),
        ("POST", f"/conversations/{conv}/messages", {"json": {"text": "hi\x00"}}),
        ("GET", "/users/a%00b", {}),
        ("GET", "/users", {"params": {"q": "a\x00"}}),
        ("GET", "/search", {"params": {"q": "a\x00b"}}),
        ("POST", "/files", {"data": {"conversation_id": "a\x00b"},
                            "files": {"file": ("a.txt", b"hello", "text/plain")}}),
    ]  # fmt: skip
    for method, path, kwargs in calls:
        r = await client.request(method, path, headers=owner.headers, **kwargs)
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        if method != "GET":
            assert r.status_code in (400, 404, 422), (method, path, r.text)
