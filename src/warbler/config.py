"""Settings: one object, read from ``WARBLER_*`` environment variables and an optional TOML file.

Environment variables win over the file. Every field is documented in docs/configuration.md.
"""

from __future__ import annotations

import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_UPLOAD_TYPES = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/zip",
    "application/json",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "audio/mpeg",
    "audio/ogg",
    "video/mp4",
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARBLER_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the embedded database and files live.")
    database_url: str = Field(
        "", description="SQLAlchemy async URL; empty means SQLite at DATA_DIR/warbler.db."
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="FULL survives power loss; NORMAL survives process crashes only."
    )
    auto_migrate: bool = Field(True, description="Apply database migrations when serving.")
    redis_url: str = Field(
        "",
        description="Redis for fan-out between nodes, presence and rate limits; empty: in-process.",
    )
    redis_prefix: str = Field("warbler:", description="Prefix of every Redis key and channel.")
    node_id: str = Field(
        "", description="This node's name in logs, presence and job leases; empty: host:pid."
    )
    host: str = Field("127.0.0.1", description="Address `warbler serve` listens on.")
    port: int = Field(8000, description="Port `warbler serve` listens on.")
    log_level: str = Field("info", description="critical, error, warning, info or debug.")

    access_token_ttl_seconds: int = Field(
        30 * 24 * 3600, ge=60, description="How long an access token lives (default 30 days)."
    )
    max_request_bytes: int = Field(1024 * 1024, ge=1024, description="Largest JSON request body.")
    max_text_chars: int = Field(10_000, ge=1, description="Longest message text, in characters.")
    max_data_bytes: int = Field(16 * 1024, ge=256, description="Largest card/data JSON, encoded.")
    send_rate_per_second: float = Field(
        20.0, gt=0, description="Messages a user may send per second, sustained."
    )
    send_burst: int = Field(40, ge=1, description="Messages a user may send in a burst.")
    max_group_members: int = Field(5_000, ge=2, description="Largest group, in members.")
    recall_window_seconds: int = Field(
        120, ge=0, description="How long a sender may recall a message (group admins: always)."
    )
    history_page_max: int = Field(200, ge=1, description="Most messages in one history page.")

    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest file upload.")
    allowed_upload_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_UPLOAD_TYPES),
        description="Content types accepted for upload (comma-separated in the env var).",
    )

    ws_queue_size: int = Field(
        1_000, ge=10, description="Events buffered per WebSocket before it counts as too slow."
    )
    ws_compression: bool = Field(
        False,
        description="Offer permessage-deflate on WebSockets. Off: compressing each frame for "
        "each socket halves fan-out throughput and doubles memory per connection (BENCHMARKS.md).",
    )
    ws_heartbeat_seconds: float = Field(
        25.0, gt=0, description="Interval of the heartbeat frame sent to every WebSocket."
    )
    event_retention_days: int = Field(30, ge=1, description="How long the resume log is kept.")

    webhook_max_attempts: int = Field(10, ge=1, description="Delivery attempts before `dead`.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Per delivery attempt.")
    webhook_backoff_base_seconds: float = Field(
        2.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    webhook_allow_private_targets: bool = Field(
        False, description="Allow webhook URLs on loopback/private networks (tests, intranets)."
    )
    job_lease_seconds: float = Field(
        60.0,
        ge=1,
        description="A running job's lease, renewed while it runs; a dead node's "
        "jobs run again elsewhere once it lapses.",
    )
    job_poll_seconds: float = Field(
        1.0, gt=0, description="How often idle job workers look for due jobs."
    )

    ready_timeout_seconds: float = Field(
        2.0, gt=0, description="How long each /ready check (database, Redis) may take."
    )
    shutdown_drain_seconds: float = Field(
        0.0,
        ge=0,
        description="After SIGTERM, how long /ready answers 503 while the node still serves.",
    )
    shutdown_grace_seconds: int = Field(
        10, ge=0, description="After draining, how long in-flight requests get to finish."
    )

    @field_validator("allowed_upload_types", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'warbler.db').resolve()}"

    @property
    def effective_node_id(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file (``WARBLER_CONFIG_FILE``), env vars, overrides."""
    path = config_file or os.environ.get("WARBLER_CONFIG_FILE")
    values: dict[str, Any] = {}
    if path:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
        env_names = {k[len("WARBLER_") :].lower() for k in os.environ if k.startswith("WARBLER_")}
        values = {k: v for k, v in values.items() if k not in env_names}
    values.update(overrides)
    return Settings(**values)
