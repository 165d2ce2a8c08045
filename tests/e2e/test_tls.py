"""End to end: ``warbler serve --tls-cert --tls-key`` serves HTTPS and WSS itself. A
self-signed certificate for 127.0.0.1 is made here with ``cryptography``; httpx and the
websockets client verify against it. Over TLS: HSTS, Secure cookies, a cookie session's
WebSocket (same origin only); plain HTTP on the port gets no answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import API, free_port, seed_tenant

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate valid for the IP 127.0.0.1 (and localhost), and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_file, key_file


@dataclass
class TlsServer:
    port: int
    context: ssl.SSLContext
    proc: subprocess.Popen[bytes]
    seed: dict[str, Any]

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.port}{API}/ws?cursor=0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """One server for the module (each start costs seconds); the tests only read, log in,
    and rename ann."""
    tmp_path = tmp_path_factory.mktemp("tls")
    data = tmp_path / "data"
    data.mkdir()
    seed = seed_tenant(data, "acme", [("ann", "member")])
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = {**os.environ, "WARBLER_DATA_DIR": str(data), "WARBLER_PORT": str(port),
           "WARBLER_LOG_LEVEL": "warning", "WARBLER_DATABASE_URL": "", "WARBLER_REDIS_URL": ""}  # fmt: skip
    log = open(tmp_path / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "warbler.cli", "serve", "--tls-cert", str(cert), "--tls-key",
         str(key)], env=env, stdout=log, stderr=log,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"https://127.0.0.1:{port}/health", verify=context).is_success:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the TLS server did not come up"
                time.sleep(0.1)
        yield TlsServer(port, context, proc, seed)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_https_answers_with_hsts_and_a_verified_certificate(server):
    r = httpx.get(f"{server.https}/health", verify=server.context)
    assert r.status_code == 200
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert r.headers["x-content-type-options"] == "nosniff"
    # An unverified client refuses the self-signed certificate: it really is TLS.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.https}/health")


def test_plain_http_on_the_tls_port_gets_no_answer(server):
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=5)


def test_a_cookie_login_over_https_sets_secure_cookies(server):
    with httpx.Client(base_url=server.https + API, verify=server.context) as client:
        r = client.post("/auth/login", json={"tenant": "acme", "username": "ann",
                        "password": PASSWORD, "cookie": True})  # fmt: skip
        assert r.status_code == 200, r.text
        headers = r.headers.get_list("set-cookie")
        session = next(h for h in headers if h.startswith("warbler_session="))
        csrf = next(h for h in headers if h.startswith("warbler_csrf="))
        for attrs in (session, csrf):
            assert "Secure" in attrs and "SameSite=lax" in attrs
        assert "HttpOnly" in session and "HttpOnly" not in csrf
        # The cookie session works over HTTPS, CSRF token and all.
        assert client.get("/users/me").json()["username"] == "ann"
        r = client.patch("/users/me", json={"display_name": "Ann"},
                         headers={"X-CSRF-Token": r.json()["csrf_token"]})  # fmt: skip
        assert r.status_code == 200


async def _synced(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in ("synced", "error"):
                return frame


async def test_wss_with_a_bearer_token(server):
    token = server.seed["users"]["ann"]["token"]
    async with websockets.connect(server.wss, ssl=server.context,
                                  additional_headers={"Authorization": f"Bearer {token}"}) as ws:  # fmt: skip
        assert (await _synced(ws))["type"] == "synced"
        await ws.send(json.dumps({"type": "ping", "ref": 1}))
        async with asyncio.timeout(10):
            assert json.loads(await ws.recv()) == {"type": "pong", "ref": 1}


async def test_wss_with_a_cookie_session_needs_this_origin(server):
    async with httpx.AsyncClient(base_url=server.https + API, verify=server.context) as client:
        r = await client.post("/auth/login", json={"tenant": "acme", "username": "ann",
                              "password": PASSWORD, "cookie": True})  # fmt: skip
        cookie = f"warbler_session={r.cookies['warbler_session']}"
    own = f"https://127.0.0.1:{server.port}"
    async with websockets.connect(server.wss, ssl=server.context, origin=own,  # type: ignore[arg-type]
                                  additional_headers={"Cookie": cookie}) as ws:  # fmt: skip
        assert (await _synced(ws))["type"] == "synced"
    # Another site's page cannot open a socket with the user's cookie.
    async with websockets.connect(server.wss, ssl=server.context,
                                  origin="https://evil.example",  # type: ignore[arg-type]
                                  additional_headers={"Cookie": cookie}) as ws:  # fmt: skip
        frame = await _synced(ws)
        assert frame["type"] == "error" and frame["error"]["code"] == "unauthenticated"


async def test_plain_ws_on_the_tls_port_fails(server):
    with pytest.raises((websockets.InvalidMessage, websockets.InvalidHandshake, OSError)):
        async with asyncio.timeout(10):
            await websockets.connect(f"ws://127.0.0.1:{server.port}{API}/ws")
