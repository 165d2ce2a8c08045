"""A small HTTP service on 127.0.0.1 for HTTP-tool tests: it records every request.

    with HttpTarget() as target:
        target.url                  # "http://127.0.0.1:PORT"
        target.requests[0].path     # "/orders/A%2F1"  (raw, as sent)
        target.requests[0].query    # {"lang": ["zh"]}
        target.requests[0].headers  # names lower-cased
        target.requests[0].body     # parsed JSON, or None

Paths: ``/echo/...`` answers JSON describing the request; ``/big`` answers 200 KB of text;
``/slow`` waits ``?seconds=`` (default 3) before answering; ``/fail`` answers 500.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BIG_BYTES = 200 * 1024


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class HttpTarget:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                )
                target.requests.append(seen)
                if split.path == "/big":
                    self._send(200, b"x" * BIG_BYTES, "text/plain")
                elif split.path == "/slow":
                    time.sleep(float(seen.query.get("seconds", ["3"])[0]))
                    self._send(200, b'{"late": true}', "application/json")
                elif split.path == "/fail":
                    self._send(500, b'{"error": "boom"}', "application/json")
                else:
                    echo = {"method": seen.method, "path": seen.path, "query": seen.query,
                            "body": seen.body, "answer": "订单已发货"}  # fmt: skip
                    self._send(200, json.dumps(echo, ensure_ascii=False).encode(),
                               "application/json; charset=utf-8")  # fmt: skip

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a size cap, a timeout)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
