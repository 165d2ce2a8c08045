"""End to end: the blocking ``warbler_client.Client``, as a script would use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import seed_tenant
from warbler_client import Client, WarblerAPIError

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path, server_factory: Any) -> Any:
    data = tmp_path / "data"
    data.mkdir()
    seed_tenant(data, "acme", [("ann", "admin"), ("bob", "member")])
    return server_factory(data)


def test_sync_client_logs_in_sends_reads_history_and_receives_an_event(server) -> None:
    with Client(server.url) as ann, Client(server.url) as bob:
        ann.login("acme", "ann", PASSWORD)
        bob.login("acme", "bob", PASSWORD)
        assert bob.me()["username"] == "bob"
        conv = ann.open_direct(bob.user_id)["id"]

        events = bob.events(timeout=5)  # connected when this returns
        sent = ann.send(conv, "hello from a script")
        frame = next(f for f in events if f.get("event") == "message.new")
        assert frame["conversation_id"] == conv
        assert frame["data"]["message"]["id"] == sent["id"]
        assert frame["data"]["message"]["text"] == "hello from a script"
        assert events.cursor == frame["id"]

        history = bob.history(conv)
        assert [m["text"] for m in history["messages"]] == ["hello from a script"]
        assert history["has_more"] is False

        # Nothing else is coming: a bounded wait times out, and the stream stays usable.
        with pytest.raises(TimeoutError):
            events.next(timeout=0.3)
        ann.send(conv, "second")
        assert events.next()["data"]["message"]["text"] == "second"

        with pytest.raises(WarblerAPIError) as err:
            bob.conversation("01NOSUCHCONVERSATION000000")
        assert (err.value.status, err.value.code) == (404, "not_found")
        with Client(server.url) as stranger, pytest.raises(WarblerAPIError) as err:
            stranger.login("acme", "bob", "wrong password")
        assert err.value.status == 401
    assert not ann._loop.thread.is_alive()
    with pytest.raises(RuntimeError):
        ann.me()
