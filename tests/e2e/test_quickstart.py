"""The README's quick start: `make run` serves the demo tenant on the embedded default."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_make_run_serves_the_demo_tenant(tmp_path):
    port = free_port()
    env = {**os.environ, "WARBLER_DATA_DIR": str(tmp_path / "var"), "WARBLER_PORT": str(port)}
    log = open(tmp_path / "make-run.log", "wb")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=log, stderr=log,
        start_new_session=True,  # make and the server it starts share one process group
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("make run did not serve within 120 s")
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"tenant": "demo", "username": "alice", "password": "warbler-demo"},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        titles = [
            c["title"] for c in httpx.get(f"{base}/api/v1/conversations", headers=headers).json()
        ]
        assert "General 综合" in titles
        found = httpx.get(f"{base}/api/v1/search", params={"q": "退款"}, headers=headers).json()
        assert found["results"], "the demo history is searchable in Chinese"
        assert "admin scope" in (tmp_path / "make-run.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
