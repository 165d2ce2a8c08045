"""deploy/: the compose file, the Dockerfile and nginx.conf agree with each other and with the
settings (Docker cannot run here, so this is what catches a typo before a deployment does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from warbler.config import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()))


def nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run `warbler serve` (the image's default command)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "build" in svc and "command" not in svc
    }


def dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", text, re.M):
        env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def test_compose_runs_two_nodes_on_postgres_and_redis_behind_nginx(compose):
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["nginx"]["image"].startswith("nginx:")
    assert len(nodes(compose)) == 2
    ids = [svc["environment"]["WARBLER_NODE_ID"] for svc in nodes(compose).values()]
    assert sorted(ids) == sorted(nodes(compose))  # distinct, and named like the service


def test_every_warbler_variable_in_compose_is_a_real_setting(compose):
    for name, svc in compose["services"].items():
        for key in svc.get("environment", {}):
            if key.startswith("WARBLER_"):
                assert key[8:].lower() in Settings.model_fields, f"{name}: unknown {key}"


def test_nodes_share_database_redis_and_files_and_never_migrate(compose):
    services = compose["services"]
    pg = services["postgres"]["environment"]
    data_dir = dockerfile_env()["WARBLER_DATA_DIR"]
    mounts = set()
    for svc in nodes(compose).values():
        env = svc["environment"]
        db = urlsplit(env["WARBLER_DATABASE_URL"])
        assert db.scheme == "postgresql+asyncpg"
        assert (db.hostname, db.username, db.password, db.path) == (
            "postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], f"/{pg['POSTGRES_DB']}"
        )  # fmt: skip
        assert urlsplit(env["WARBLER_REDIS_URL"]).hostname == "redis"
        assert env["WARBLER_AUTO_MIGRATE"] == "false"
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        (mount,) = svc["volumes"]
        volume, path = mount.split(":")
        assert path == data_dir and volume in compose["volumes"]
        mounts.add(volume)
    assert len(mounts) == 1  # one files volume, seen by every node
    assert services["migrate"]["command"] == ["warbler", "migrate"]


def test_stop_grace_period_covers_drain_grace_and_workers(compose):
    defaults = Settings()
    for svc in nodes(compose).values():
        drain = float(svc["environment"]["WARBLER_SHUTDOWN_DRAIN_SECONDS"])
        grace = float(svc["environment"].get("WARBLER_SHUTDOWN_GRACE_SECONDS", 0)) or (
            defaults.shutdown_grace_seconds
        )
        period = int(svc["stop_grace_period"].removesuffix("s"))
        # Job runner: up to 5 s to finish claiming plus 5 s for running handlers.
        assert period >= drain + grace + 10


def test_build_and_mounted_files_exist(compose):
    for svc in nodes(compose).values():
        context = (DEPLOY / svc["build"]["context"]).resolve()
        assert (context / svc["build"]["dockerfile"]).is_file()
        assert (context / "pyproject.toml").is_file()
    source = compose["services"]["nginx"]["volumes"][0].split(":")[0]
    assert (DEPLOY / source).resolve() == (DEPLOY / "nginx.conf").resolve()


def test_dockerfile_runs_warbler_serve_as_a_non_root_user():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert 'CMD ["warbler", "serve", "--host", "0.0.0.0"]' in text


def test_nginx_upstreams_are_the_compose_nodes_and_outlast_the_heartbeat(compose):
    conf = (DEPLOY / "nginx.conf").read_text()
    port = dockerfile_env()["WARBLER_PORT"]
    upstreams = re.findall(r"^\s*server ([\w-]+):(\d+)", conf, re.M)
    assert sorted(upstreams) == sorted((name, port) for name in nodes(compose))
    ws = conf[conf.index("location /api/v1/ws") :]
    ws = ws[: ws.index("}")]
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", ws)[1])  # type: ignore[index]
    assert read_timeout > 2 * Settings().ws_heartbeat_seconds
    # No session affinity directive: clients resume by cursor on any node.
    assert not re.search(r"^\s*(ip_hash|hash|sticky)\b", conf, re.M)
