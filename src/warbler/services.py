"""The composition root: every implementation is chosen here, once, from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis

from warbler.ai.bots import BotService
from warbler.ai.engine import Engine
from warbler.ai.provider_configs import ProviderConfigService
from warbler.ai.quotas import QuotaService
from warbler.ai.replies import ReplyJob
from warbler.ai.tools.registry import ToolRegistry
from warbler.ai.trigger import REPLY_KIND, ReplyTrigger
from warbler.ai.usage import UsageService
from warbler.bus.base import EventBus
from warbler.bus.memory import MemoryBus
from warbler.bus.redis import RedisBus, redis_client
from warbler.config import Settings
from warbler.delivery.heartbeat import Heartbeat
from warbler.delivery.hub import Hub
from warbler.delivery.sequencer import Sequencer
from warbler.files.service import FileService
from warbler.files.store import LocalFileStore
from warbler.im.auth import AuthService
from warbler.im.conversations import ConversationService
from warbler.im.events import EventLog
from warbler.im.messages import Limits, MessageService
from warbler.im.presence import MemoryPresenceStore, PresenceService, PresenceStore
from warbler.im.presence_redis import RedisPresenceStore
from warbler.im.ratelimit import MemoryRateLimiter, RateLimiter
from warbler.im.ratelimit_redis import RedisRateLimiter
from warbler.im.receipts import ReceiptService
from warbler.im.retention import EventPruner
from warbler.im.users import UserService
from warbler.jobs.queue import JobQueue
from warbler.jobs.runner import JobRunner, RetryPolicy
from warbler.kb.bases import KnowledgeBaseService
from warbler.kb.curated import CuratedService
from warbler.kb.embedders.base import Embedder
from warbler.kb.embedders.factory import build_embedder
from warbler.kb.ingest.blobs import build_blob_store
from warbler.kb.ingest.jobs import INGEST_KIND, REINDEX_KIND, IngestJobs
from warbler.kb.ingest.jobs import POLICY as INGEST_POLICY
from warbler.kb.ingest.pipeline import Ingestor
from warbler.kb.ingest.service import KbIngestService
from warbler.kb.retrieve import Retriever
from warbler.privacy.service import Privacy, build_privacy
from warbler.search.service import SearchService
from warbler.security.audit import AuditLog
from warbler.security.crypto import SecretBox
from warbler.security.encryption.files import EncryptedFileStore
from warbler.security.encryption.keyring import Keyring
from warbler.security.encryption.master import MasterKeys
from warbler.security.encryption.sealer import Sealer
from warbler.security.outbound import OutboundPolicy
from warbler.security.redaction import logs as redaction_logs
from warbler.security.redaction.service import RedactionService
from warbler.security.throttle import LoginThrottle, ThrottlePolicy
from warbler.store.db import Database
from warbler.support.desk.service import DeskService
from warbler.support.service import SupportService
from warbler.support.sweeper import SupportSweeper
from warbler.support.widget.service import WidgetService, session_limiter
from warbler.webhooks.delivery import WebhookDeliverer, retry_policy
from warbler.webhooks.dispatcher import WebhookDispatcher
from warbler.webhooks.service import DELIVERY_KIND, WebhookService


class Worker(Protocol):
    """A background loop owned by the node (job runner, pruning)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus
    events: EventLog
    hub: Hub
    sequencer: Sequencer
    auth: AuthService
    users: UserService
    conversations: ConversationService
    messages: MessageService
    receipts: ReceiptService
    presence: PresenceService
    search: SearchService
    files: FileService
    jobs: JobRunner
    webhooks: WebhookService
    # Secrets at rest (sealed under tenant keys: security/encryption/sealer.py), outbound
    # HTTP on a tenant's behalf, the embedding model.
    secrets: SecretBox
    outbound: OutboundPolicy
    embedder: Embedder
    # Knowledge bases (who reads them) and their documents (ingestion jobs, kb/ingest/).
    kb: KnowledgeBaseService
    kb_ingest: KbIngestService
    # Knowledge-base retrieval (curated answers, BM25 + vectors) and curated-answer editing.
    retriever: Retriever
    curated: CuratedService
    background: list[Worker] = field(default_factory=list)
    # The node's one Redis client when WARBLER_REDIS_URL is set (bus, presence, rate limits).
    redis: aioredis.Redis | None = None
    # The AI reply engine (chat replies and the OpenAI-compatible API); needs the rest.
    engine: Engine = field(init=False)
    # Tools for bots: built-ins, HTTP tools, MCP servers (ai/tools/registry.py).
    tools: ToolRegistry = field(init=False)
    # AI bots: configurations, the tenants' providers (sealed keys), quotas, usage rows.
    bots: BotService = field(init=False)
    ai_providers: ProviderConfigService = field(init=False)
    ai_quotas: QuotaService = field(init=False)
    ai_usage: UsageService = field(init=False)
    # The append-only audit log of sensitive actions (security/audit.py).
    audit: AuditLog = field(init=False)
    # Tenants' data keys under the master key: encryption at rest (security/encryption/).
    keyring: Keyring = field(init=False)
    # Retention policies and their sweeper, data exports, erasure (privacy/).
    privacy: Privacy = field(init=False)
    # Tenants' PII redaction policies and the per-answer sessions (security/redaction/).
    redaction: RedactionService = field(init=False)
    # Customer service: support conversations, hand-off, queue, assignment (support/).
    support: SupportService = field(init=False)
    # The support web widget: visitor sessions, signed identity tokens (support/widget/).
    support_widget: WidgetService = field(init=False)
    # The agent desk: canned replies, notes, suggestions, curated saves, CSAT, reports.
    support_desk: DeskService = field(init=False)

    async def start_background(self) -> None:
        """Start the node's background workers (see ``background``)."""
        for worker in self.background:
            await worker.start()

    async def stop_background(self) -> None:
        for worker in reversed(self.background):
            await worker.stop()

    async def close(self) -> None:
        self.keyring.close()
        await self.bus.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()
        # The local model's llama.cpp server, if a bot started one (no-op otherwise).
        from warbler.ai.providers import local

        await local.aclose()


@dataclass
class Shared:
    """What nodes must share to scale out: in-process by default, Redis when configured."""

    bus: EventBus
    presence: PresenceStore
    send_limiter: RateLimiter
    # AI quotas: every call passes its own rate (each bot and tenant has its limits).
    ai_limiter: RateLimiter
    redis: aioredis.Redis | None = None
    background: list[Worker] = field(default_factory=list)


def build_shared(settings: Settings) -> Shared:
    limits = (settings.send_rate_per_second, settings.send_burst)
    if not settings.redis_url:
        return Shared(
            MemoryBus(), MemoryPresenceStore(), MemoryRateLimiter(*limits), MemoryRateLimiter(1, 1)
        )
    client = redis_client(settings.redis_url)
    prefix, node = settings.redis_prefix, settings.effective_node_id
    presence = RedisPresenceStore(client, prefix=prefix, node_id=node)
    return Shared(
        bus=RedisBus(client, prefix=prefix, node_id=node),
        presence=presence,
        send_limiter=RedisRateLimiter(client, *limits, prefix=prefix),
        ai_limiter=RedisRateLimiter(client, 1, 1, prefix=prefix, name="ai"),
        redis=client,
        background=[presence],  # the heartbeat that keeps this node's devices counted
    )


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Personal data out of every log record of the process (WARBLER_REDACTION_LOGS).
    redaction_logs.install(settings.redaction_logs)
    db = Database(settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    masters = MasterKeys.from_settings(settings)
    keyring = Keyring(db, masters, refresh_seconds=settings.key_refresh_seconds)
    shared = build_shared(settings)
    bus = shared.bus
    events = EventLog(bus)
    hub = Hub()
    # With a shared bus, events can arrive out of order or be lost: poll as a safety net.
    sequencer = Sequencer(db, hub, poll_seconds=2.0 if settings.redis_url else None)
    bus.subscribe(sequencer.on_event)
    bus.on_reconnect(sequencer.on_bus_reconnect)
    auth = AuthService(
        db,
        settings.access_token_ttl_seconds,
        throttle=LoginThrottle(db, ThrottlePolicy.from_settings(settings)),
        cache_seconds=settings.auth_cache_seconds,
    )
    limits = Limits(
        max_text_chars=settings.max_text_chars,
        max_data_bytes=settings.max_data_bytes,
        recall_window_seconds=settings.recall_window_seconds,
        history_page_max=settings.history_page_max,
    )
    jobs = JobRunner(JobQueue(db), settings)
    deliverer = WebhookDeliverer(db, settings)
    jobs.register(DELIVERY_KIND, deliverer, retry_policy(settings))
    embedder = build_embedder(settings)
    curated = CuratedService(db, embedder, settings)
    kb_blobs = build_blob_store(settings)
    ingestor = Ingestor(db, kb_blobs, embedder, OutboundPolicy.from_settings(settings), settings)
    # Re-embedding a KB for a new model re-embeds its curated questions too.
    ingestor.reindex_hooks.append(curated.reembed)
    ingest_jobs = IngestJobs(ingestor)
    jobs.register(INGEST_KIND, ingest_jobs.ingest, INGEST_POLICY)
    jobs.register(REINDEX_KIND, ingest_jobs.reindex, INGEST_POLICY)
    services = Services(
        settings=settings,
        db=db,
        bus=bus,
        events=events,
        hub=hub,
        sequencer=sequencer,
        auth=auth,
        users=UserService(db, auth),
        conversations=ConversationService(db, events, settings.max_group_members),
        messages=MessageService(
            db,
            events,
            limits,
            shared.send_limiter,
        ),
        receipts=ReceiptService(db, events),
        presence=PresenceService(shared.presence, events),
        search=SearchService(db),
        files=FileService(
            db,
            EncryptedFileStore(
                LocalFileStore(settings.files_dir, fsync=settings.sqlite_synchronous == "FULL"),
                purpose="files",
            ),
            settings,
        ),
        jobs=jobs,
        webhooks=WebhookService(db, jobs.queue, settings),
        secrets=Sealer(masters),
        outbound=OutboundPolicy.from_settings(settings),
        embedder=embedder,
        kb=KnowledgeBaseService(db, jobs.queue, kb_blobs),
        kb_ingest=KbIngestService(
            db, jobs.queue, kb_blobs, ingestor, OutboundPolicy.from_settings(settings), settings
        ),
        retriever=Retriever(db, embedder, curated, settings),
        curated=curated,
        # Stopped in reverse: the dispatcher, then the runner, then the deliverer's client.
        background=[
            keyring,  # first: gives tenants from before encryption at rest their keys
            *shared.background,
            sequencer,
            Heartbeat(hub, settings.ws_heartbeat_seconds),
            EventPruner(db, settings.event_retention_days),
            deliverer,
            jobs,
            WebhookDispatcher(db, jobs.queue, bus, settings),
        ],
        redis=shared.redis,
    )
    services.audit = AuditLog(db)
    services.keyring = keyring
    services.users.tenant_hooks.append(keyring.provision_in)
    services.redaction = RedactionService(db, services.audit, settings.redaction_default_mode)
    services.ai_providers = ProviderConfigService(db, services.secrets)
    services.bots = BotService(db, services.users, services.ai_providers)
    services.ai_quotas = QuotaService(db, shared.ai_limiter, settings)
    services.ai_usage = UsageService(db)
    services.tools = ToolRegistry(db, settings, services.secrets, services.outbound)
    # Customer service: its send hook runs BEFORE the AI reply trigger (an escalation in the
    # send's transaction silences the bot), its gate keeps the bot quiet while a person owns
    # the conversation (at enqueue and again before posting), its post-reply hook hands
    # unanswered questions and failures to people.
    services.support = SupportService(db, events, services.audit, services.secrets)
    services.messages.send_hooks.append(services.support.send_hook)
    services.background.append(SupportSweeper(services.support, settings.support_sweep_seconds))
    # AI replies: a send hook enqueues the durable reply job in the send's transaction.
    services.engine = Engine(services)
    services.messages.send_hooks.append(
        ReplyTrigger(
            jobs.queue, settings.ai_reply_max_attempts, gates=[services.support.reply_gate]
        )
    )
    reply_job = ReplyJob(services)
    reply_job.gates.append(services.support.reply_gate)
    reply_job.post_reply_hooks.append(services.support.after_reply)
    jobs.register(
        REPLY_KIND,
        reply_job,
        # A short lease: a reply whose node died resumes within 20 s, not a minute.
        RetryPolicy(
            base_seconds=1.0, max_seconds=30.0, lease_seconds=min(settings.job_lease_seconds, 20.0)
        ),
    )
    services.support_widget = WidgetService(services, session_limiter(settings, shared.redis))
    services.support_desk = DeskService(services)
    services.privacy = build_privacy(services)
    return services
