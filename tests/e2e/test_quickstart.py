"""The README's quick start: `make run` serves the demo tenant on the embedded default."""

from __future__ import annotations

import os
import re
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
        printed = (tmp_path / "make-run.log").read_text()
        assert "admin scope" in printed
        key = re.search(r"(wbk_[A-Za-z0-9_-]+)", printed).group(1)
        # The README's curl to the demo bot, with no model configured: a cited answer.
        answer = httpx.post(
            f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "assistant",
                  "messages": [{"role": "user", "content": "退款多久能到账？"}]},
            timeout=60,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["citations"], answer.text
        # The README's Python snippet that asks the bot in chat, run as written.
        snippet = _readme_block("ask_the_bot").replace("http://127.0.0.1:8000", base)
        out = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", snippet],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "30 days" in out.stdout, out.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _readme_block(marker: str) -> str:
    """The README's Python code block that contains ``marker``, with the tour's import."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    found = [b for b in blocks if marker in b]
    assert found, f"no README python block mentions {marker}"
    return "import asyncio\nfrom warbler_client import AsyncClient\n\n" + found[0]
