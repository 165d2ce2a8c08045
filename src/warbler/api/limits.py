"""Request body size limits, enforced before a handler reads the body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warbler.api.errors import error_response
from warbler.errors import TooLarge

MULTIPART_OVERHEAD = 64 * 1024


class BodyLimit:
    """Rejects bodies over the limit: at once by Content-Length, else while streaming."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        upload: int,
        upload_paths: tuple[str, ...],
        more_uploads: dict[str, int] | None = None,
    ):
        self.app = app
        self.default = default
        self.upload = upload + MULTIPART_OVERHEAD
        self.upload_paths = upload_paths
        # Upload routes with a limit of their own, by path suffix (KB documents).
        self.more_uploads = {
            suffix: size + MULTIPART_OVERHEAD for suffix, size in (more_uploads or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.upload if path.endswith(self.upload_paths) else self.default
        for suffix, size in self.more_uploads.items():
            if path.endswith(suffix):
                limit = size
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    response = error_response(
                        413, "too_large", f"the request body is larger than {limit} bytes",
                        {"limit": limit},
                    )  # fmt: skip
                    await response(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise TooLarge(f"the request body is larger than {limit} bytes",
                                   details={"limit": limit})  # fmt: skip
            return message

        await self.app(scope, limited_receive, send)
