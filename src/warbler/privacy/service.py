"""The privacy services, built once from the rest (``services.privacy``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from warbler.files.store import LocalFileStore
from warbler.privacy.erasure import ErasureService
from warbler.privacy.export import EXPORT_KIND, POLICY, ExportService
from warbler.privacy.retention import RetentionService
from warbler.privacy.sweeper import RetentionSweeper
from warbler.security.encryption.files import EncryptedFileStore

if TYPE_CHECKING:
    from warbler.services import Services

EXPORTS_FOLDER = "exports"


@dataclass(frozen=True, slots=True)
class Privacy:
    retention: RetentionService
    exports: ExportService
    erasure: ErasureService
    sweeper: RetentionSweeper


def build_privacy(services: Services) -> Privacy:
    """Wire retention, exports and erasure; registers the export job kind and adds the
    sweeper to the node's background workers."""
    settings = services.settings
    root = settings.data_dir / EXPORTS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    # Archives are encrypted at rest like conversation files (security/encryption/files.py).
    archives = EncryptedFileStore(
        LocalFileStore(root, fsync=settings.sqlite_synchronous == "FULL"), purpose="exports"
    )
    files = services.files.store
    retention = RetentionService(
        services.db, files, services.audit, settings.privacy_sweep_interval_seconds
    )
    exports = ExportService(
        services.db, services.jobs.queue, archives, files, services.audit,
        ttl_hours=settings.privacy_export_ttl_hours, work_dir=root,
    )  # fmt: skip
    erasure = ErasureService(
        services.db, files, exports, services.conversations, services.events, services.auth,
        services.hub, services.audit,
    )  # fmt: skip
    services.jobs.register(EXPORT_KIND, exports.run, POLICY)
    sweeper = RetentionSweeper(retention, exports, settings.privacy_sweep_interval_seconds)
    services.background.append(sweeper)
    return Privacy(retention, exports, erasure, sweeper)
