"""Key rotation without downtime: a tenant's data key, the master key, re-encryption, and a
serving node that keeps answering (and reading everything) while keys change under it."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.conftest import group_of, seed_tenant, send
from warbler.ai.provider_configs import key_context
from warbler.cli import app as cli
from warbler.security.crypto import SecretBox, decode_key, new_key_text
from warbler.security.encryption.keycache import CACHE
from warbler.security.encryption.keyring import Keyring
from warbler.security.encryption.master import MasterKeys, fingerprint
from warbler.security.encryption.reencrypt import reencrypt
from warbler.security.encryption.rotation import rotate_master, rotate_tenant, status
from warbler.security.encryption.values import key_id
from warbler.store.models_ai import AiProvider
from warbler.store.models_crypto import TenantKey

runner = CliRunner()


async def kids_of(services: Any, tenant_id: str) -> dict[str, str]:
    """message id -> the key id its stored text is under."""
    async with services.db.read() as s:
        rows = await s.execute(
            text("SELECT id, text FROM messages WHERE tenant_id = :t AND text IS NOT NULL"),
            {"t": tenant_id},
        )
        return {i: key_id(raw) or "plain" for i, raw in rows}


async def test_a_rotated_tenant_key_encrypts_new_writes_old_values_still_read_and_reencrypt_moves_them(
    client, services, make_tenant
):
    acme, globex = await make_tenant("acme"), await make_tenant("globex")
    ann, bo = await acme.user("ann"), await acme.user("bo")
    conv = await group_of(client, ann, bo)
    before = [await send(client, ann, conv, f"before {i} 旧钥匙") for i in range(3)]
    gus, hal = await globex.user("gus"), await globex.user("hal")
    await send(client, gus, await group_of(client, gus, hal), "globex stays put")
    old, theirs = CACHE.active(acme.id).kid, CACHE.active(globex.id).kid

    key = await rotate_tenant(services.keyring, acme.id)
    assert key["version"] == 2 and key["kid"] != old and CACHE.active(acme.id).kid == key["kid"]
    after = await send(client, bo, conv, "after 新钥匙")

    kids = await kids_of(services, acme.id)
    assert {kids[m["id"]] for m in before} == {old} and kids[after["id"]] == key["kid"]
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    texts = [m["text"] for m in history["messages"] if m["text"]]
    assert texts == [*(m["text"] for m in before), "after 新钥匙"]
    for q, n in (("旧钥匙", 3), ("新钥匙", 1)):
        r = await client.get("/search", params={"q": q}, headers=ann.headers)
        assert len(r.json()["results"]) == n, q
    counts = (await status(services.keyring, count_rows=True))["values_by_key"]
    assert counts["messages.text"][old] >= 3 and counts["messages.text"][key["kid"]] == 1

    moved = await reencrypt(services.keyring, tenant_id=acme.id)
    assert moved["messages.text"] == 3 and moved["events.payload"] >= 1
    assert set((await kids_of(services, acme.id)).values()) == {key["kid"]}
    assert set((await kids_of(services, globex.id)).values()) == {theirs}  # untouched
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    assert [m["text"] for m in history["messages"] if m["text"]] == texts
    keys = {(k["tenant_id"], k["purpose"], k["version"]): k["state"]
            for k in (await status(services.keyring))["keys"]}  # fmt: skip
    assert keys[(acme.id, "data", 1)] == "retired" and keys[(acme.id, "data", 2)] == "active"
    assert keys[(acme.id, "search", 1)] == "active"  # the search key is not rotated


async def test_rotate_master_rewraps_every_key_and_reseals_v1_secrets(
    client, services, make_tenant
):
    acme, globex = await make_tenant("acme"), await make_tenant("globex")
    admin = await acme.user("ada", role="admin")
    r = await client.post("/ai/providers", headers=admin.headers, json={
        "name": "vendor", "kind": "openai", "base_url": "https://api.example.com/v1",
        "api_key": "sk-placeholder",
    })  # fmt: skip
    provider = r.json()["id"]
    old = services.keyring.masters.current.key
    legacy = SecretBox(old).seal("sk-sealed-in-2024", key_context(provider))
    async with services.db.write() as s:
        await s.execute(
            text("UPDATE ai_providers SET api_key_sealed = :k WHERE id = :i"),
            {"k": legacy, "i": provider},
        )
    new = os.urandom(32)
    during = Keyring(services.db, MasterKeys(new, old))  # a node holding both
    try:
        result = await rotate_master(during)
    finally:
        during.close()
    assert result == {"master_id": fingerprint(new), "rewrapped": 4, "resealed": 1}
    async with services.db.read() as s:
        rows = list((await s.scalars(select(TenantKey))).all())
        sealed = await s.scalar(select(AiProvider.api_key_sealed))
    assert {r.tenant_id for r in rows} == {acme.id, globex.id}
    only_new, only_old = MasterKeys(new), MasterKeys(old)
    for row in rows:
        assert row.master_id == fingerprint(new)
        assert (
            len(only_new.unwrap(row.tenant_id, row.purpose, row.id, row.wrapped, row.master_id))
            == 32
        )
        with pytest.raises(Exception, match="does not have"):
            only_old.unwrap(row.tenant_id, row.purpose, row.id, row.wrapped, row.master_id)
    assert sealed and sealed.startswith("enc1:")
    assert services.secrets.open(sealed, key_context(provider)) == "sk-sealed-in-2024"


def test_keys_commands_report_rotate_and_refuse_an_unfinished_master_rotation(tmp_path):
    data = tmp_path / "data"
    seed_tenant(data, "acme", [("ann", "member")])
    env = {"WARBLER_DATA_DIR": str(data)}
    status_out = runner.invoke(cli, ["keys", "status", "--rows"], env=env)
    assert status_out.exit_code == 0, status_out.output
    assert "acme" in status_out.output and "active" in status_out.output

    old = (data / "secret.key").read_text()
    rotated = runner.invoke(cli, ["keys", "rotate-master", "--generate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "re-wrapped 2 data keys" in rotated.output
    assert (data / "secret.key.previous").read_text() == old
    new = decode_key((data / "secret.key").read_text())
    with sqlite3.connect(data / "warbler.db") as db:
        assert {m for (m,) in db.execute("SELECT master_id FROM tenant_keys")} == {fingerprint(new)}
    again = runner.invoke(cli, ["keys", "rotate-master", "--generate"], env=env)
    assert again.exit_code == 1 and "not finished" in again.output

    tenant = runner.invoke(cli, ["keys", "rotate-tenant", "acme", "--reencrypt"], env=env)
    assert tenant.exit_code == 0, tenant.output
    assert "(version 2) is active" in tenant.output
    unknown = runner.invoke(cli, ["keys", "rotate-tenant", "nope"], env=env)
    assert unknown.exit_code == 1 and "not_found" in unknown.output


# -- a serving node ------------------------------------------------------------------------


class Traffic:
    """A thread that keeps sending and reading messages through a node's HTTP API."""

    def __init__(self, api: str, conv: str, sender: str, reader: str, start: int) -> None:
        self.api, self.conv, self.next = api, conv, start
        self.sender = {"Authorization": f"Bearer {sender}"}
        self.reader = {"Authorization": f"Bearer {reader}"}
        self.sent: list[tuple[str, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=20) as c:
            while not self._stop.is_set() and len(self.sent) < 150:
                body = f"message {self.next} 第{self.next}条"
                r = c.post(f"/conversations/{self.conv}/messages", json={"text": body},
                           headers=self.sender)  # fmt: skip
                if r.status_code != 201:
                    self.failures.append(f"send: {r.status_code} {r.text}")
                else:
                    self.sent.append((r.json()["id"], body))
                    self.next += 1
                r = c.get(f"/conversations/{self.conv}/messages", params={"limit": 5},
                          headers=self.reader)  # fmt: skip
                if r.status_code != 200:
                    self.failures.append(f"read: {r.status_code} {r.text}")
                time.sleep(0.02)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def wait_for(self, n: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while len(self.sent) < n and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        assert len(self.sent) >= n, (len(self.sent), self.failures)

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(30)


def read_all(api: str, conv: str, token: str) -> dict[str, str]:
    r = httpx.get(f"{api}/conversations/{conv}/messages", params={"limit": 200},
                  headers={"Authorization": f"Bearer {token}"}, timeout=20)  # fmt: skip
    assert r.status_code == 200, r.text
    return {m["id"]: m["text"] for m in r.json()["messages"] if m["text"]}


@pytest.mark.slow
def test_a_serving_node_keeps_answering_and_reading_through_key_rotations(
    tmp_path: Path, server_factory: Callable[..., Any]
):
    old, new = new_key_text(), new_key_text()
    data = tmp_path / "node"
    world = seed_tenant(data, "acme", [("ann", "member"), ("bo", "member")], secret_key=old)
    ann, bo = world["users"]["ann"]["token"], world["users"]["bo"]["token"]
    fast = {"WARBLER_KEY_REFRESH_SECONDS": "0.5"}
    server = server_factory(data, WARBLER_SECRET_KEY=old, **fast)
    r = httpx.post(f"{server.api}/conversations", json={"kind": "group", "title": "g",
                   "member_ids": [world["users"]["bo"]["id"]]},
                   headers={"Authorization": f"Bearer {ann}"})  # fmt: skip
    conv = r.json()["id"]
    sent: list[tuple[str, str]] = []

    def cli_env(master: str, previous: str = "") -> dict[str, Any]:
        return {"WARBLER_DATA_DIR": str(data), "WARBLER_SECRET_KEY": master,
                "WARBLER_SECRET_KEY_PREVIOUS": previous}  # fmt: skip

    # 1. A tenant key rotation and re-encryption while messages flow.
    with Traffic(server.api, conv, ann, bo, 0) as traffic:
        traffic.wait_for(15)
        out = runner.invoke(cli, ["keys", "rotate-tenant", "acme", "--reencrypt"],
                            env=cli_env(old))  # fmt: skip
        assert out.exit_code == 0, out.output
        traffic.wait_for(len(traffic.sent) + 15)
    sent += traffic.sent
    assert not traffic.failures, traffic.failures
    assert read_all(server.api, conv, bo) == dict(sent)

    # 2. The node restarts with the new master key and the previous one: the data keys are
    #    still wrapped under the old key, and everything reads.
    server.stop()
    server.env_extra = {"WARBLER_SECRET_KEY": new, "WARBLER_SECRET_KEY_PREVIOUS": old, **fast}
    server.start()
    assert read_all(server.api, conv, bo) == dict(sent)

    # 3. The master key rotation (re-wrapping every data key) while messages flow; then
    #    whatever was written under the old tenant key meanwhile moves too.
    with Traffic(server.api, conv, ann, bo, len(sent)) as traffic:
        traffic.wait_for(10)
        out = runner.invoke(cli, ["keys", "rotate-master"], env=cli_env(new, old))
        assert out.exit_code == 0, out.output
        assert "re-wrapped 3 data keys" in out.output  # data v1 and v2, search v1
        out = runner.invoke(cli, ["keys", "reencrypt"], env=cli_env(new, old))
        assert out.exit_code == 0, out.output
        traffic.wait_for(len(traffic.sent) + 10)
    sent += traffic.sent
    assert not traffic.failures, traffic.failures

    # 4. The previous key is gone from the configuration: a node with the new key alone
    #    reads everything; one with the old key alone cannot start.
    server.stop()
    server.env_extra = {"WARBLER_SECRET_KEY": new}
    server.start()
    assert read_all(server.api, conv, bo) == dict(sent)
    out = runner.invoke(cli, ["keys", "status", "--rows"], env=cli_env(new))
    assert out.exit_code == 0, out.output
    assert "previous: -" in out.output and fingerprint(decode_key(new)) in out.output
    with sqlite3.connect(data / "warbler.db") as db:  # every stored body is encrypted
        texts = [t for (t,) in db.execute("SELECT text FROM messages WHERE text IS NOT NULL")]
    assert len(texts) >= len(sent) and all(t.startswith("enc1:") for t in texts)
    server.stop()
    server.env_extra = {"WARBLER_SECRET_KEY": old}
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
