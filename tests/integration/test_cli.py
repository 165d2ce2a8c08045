"""The `warbler` CLI: admin commands create what they say, and the result can log in."""

from __future__ import annotations

import asyncio
import re

import httpx
from typer.testing import CliRunner

from tests.conftest import make_settings
from warbler.app import create_app
from warbler.cli import app as cli

runner = CliRunner()


def test_admin_commands_create_a_tenant_a_user_and_an_api_key(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("WARBLER_DATA_DIR", str(data))
    for args in (
        ["migrate"],
        ["admin", "create-tenant", "globex", "--name", "Globex 环球"],
        [
            "admin",
            "create-user",
            "globex",
            "hank",
            "--password",
            "s3cret-enough",
            "--role",
            "admin",
        ],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    made_key = runner.invoke(
        cli, ["admin", "create-api-key", "globex", "ops", "--scope", "users:read"]
    )
    assert made_key.exit_code == 0, made_key.output
    key = re.search(r"wbk_[\w-]+", made_key.output)
    assert key is not None

    duplicate = runner.invoke(cli, ["admin", "create-tenant", "globex"])
    assert duplicate.exit_code == 1 and "conflict" in duplicate.output
    unknown = runner.invoke(
        cli, ["admin", "create-user", "nope", "x", "--password", "s3cret-enough"]
    )
    assert unknown.exit_code == 1 and "not_found" in unknown.output

    async def check_with_the_api() -> None:
        app = create_app(make_settings(data))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as c:
                login = await c.post(
                    "/auth/login",
                    json={"tenant": "globex", "username": "hank", "password": "s3cret-enough"},
                )
                assert login.status_code == 200
                users = await c.get("/users", headers={"Authorization": f"Bearer {key.group(0)}"})
                assert [u["username"] for u in users.json()] == ["hank"]

    asyncio.run(check_with_the_api())


def test_demo_seeds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WARBLER_DATA_DIR", str(tmp_path / "data"))
    first = runner.invoke(cli, ["demo"])
    assert first.exit_code == 0 and "wbk_" in first.output
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 0 and "already existed" in again.output
