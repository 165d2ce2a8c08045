"""Tenants' redaction policies: read, replace (audited), preview; and the per-answer session
the reply engine hands to the providers that send text off the machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.security.audit import AuditLog
from warbler.security.redaction.custom import PatternTimeout
from warbler.security.redaction.errors import RedactionBlocked
from warbler.security.redaction.policy import Policy, checked
from warbler.security.redaction.provider import is_external
from warbler.security.redaction.session import RedactionSession
from warbler.store.db import Database
from warbler.store.models_redaction import RedactionPolicy

AUDIT_ACTION = "settings.redaction"
MAX_PREVIEW_CHARS = 20_000


class RedactionService:
    def __init__(self, db: Database, audit: AuditLog, default_mode: str = "redact") -> None:
        self.db = db
        self.audit = audit
        self.default = Policy(mode=default_mode)  # type: ignore[arg-type]

    # -- policies -------------------------------------------------------------------------

    async def policy(self, tenant_id: str) -> Policy:
        async with self.db.read() as s:
            row = await s.get(RedactionPolicy, tenant_id)
        if row is None:
            return self.default
        return Policy(
            mode=row.mode,  # type: ignore[arg-type]
            detectors=tuple(row.detectors),
            patterns=tuple(row.patterns),
            keywords=tuple(row.keywords),
            restore=row.restore,
            custom=True,
            updated_at=row.updated_at,
        )

    async def get(self, principal: Principal) -> dict[str, Any]:
        principal.require_admin()
        return (await self.policy(principal.tenant_id)).view()

    async def put(self, principal: Principal, fields: dict[str, Any]) -> dict[str, Any]:
        """Replace the tenant's policy (fields left out take their defaults). Audited as
        ``settings.redaction`` with the mode, detectors, pattern names and keyword count,
        never the keywords or patterns themselves."""
        principal.require_admin()
        policy = checked(
            mode=fields.get("mode", "redact"),
            detectors=fields.get("detectors"),
            patterns=fields.get("patterns"),
            keywords=fields.get("keywords"),
            restore=bool(fields.get("restore", True)),
        )
        try:
            await self._save(principal, policy)
        except IntegrityError:  # a concurrent first PUT created the row: ours replaces it
            await self._save(principal, policy)
        return (await self.policy(principal.tenant_id)).view()

    async def _save(self, principal: Principal, policy: Policy) -> None:
        async with self.db.write() as s:
            row = await s.get(RedactionPolicy, principal.tenant_id)
            if row is None:
                row = RedactionPolicy(tenant_id=principal.tenant_id)
                s.add(row)
            row.mode, row.detectors = policy.mode, list(policy.detectors)
            row.patterns = [dict(p) for p in policy.patterns]
            row.keywords, row.restore = list(policy.keywords), policy.restore
            row.updated_at = utcnow()
            await self.audit.record_in(
                s, tenant_id=principal.tenant_id, actor=principal, action=AUDIT_ACTION,
                target_type="tenant", target_id=principal.tenant_id,
                data={"mode": policy.mode, "detectors": list(policy.detectors),
                      "patterns": [p["name"] for p in policy.patterns],
                      "keywords": len(policy.keywords), "restore": policy.restore},
            )  # fmt: skip

    async def preview(
        self, principal: Principal, text: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        """What the tenant's policy (or the policy in ``overrides``, not saved) makes of
        ``text``: the redacted text, each finding, and whether ``block`` would refuse it."""
        principal.require_admin()
        if len(text) > MAX_PREVIEW_CHARS:
            raise InvalidRequest(
                f"the text is longer than {MAX_PREVIEW_CHARS} characters",
                details={"field": "text"},
            )
        policy = await self.policy(principal.tenant_id)
        if overrides:
            policy = checked(
                mode=overrides.get("mode", policy.mode),
                detectors=overrides.get("detectors", list(policy.detectors)),
                patterns=overrides.get("patterns", [dict(p) for p in policy.patterns]),
                keywords=overrides.get("keywords", list(policy.keywords)),
                restore=overrides.get("restore", policy.restore),
            )
        session = RedactionSession(policy.scanner())
        try:
            redacted, findings = session.vault.redact(text, session.scanner)
        except PatternTimeout as exc:
            raise InvalidRequest(
                f"the pattern {exc.name!r} timed out on this text; in use it would stop the "
                "text from being sent",
                details={"field": "patterns", "pattern": exc.name},
            ) from None
        return {
            "mode": policy.mode,
            "text": redacted,
            "blocked": policy.mode == "block" and bool(findings),
            "findings": [
                {
                    "detector": f.detector,
                    "placeholder": session.vault.placeholder(f),
                    "start": f.start,
                    "end": f.end,
                    "value": f.value,
                }
                for f in findings
            ],
        }

    # -- the reply engine -----------------------------------------------------------------

    async def for_answer(
        self, tenant_id: str, kinds: Sequence[str], question: str, language: str = "en"
    ) -> RedactionSession | None:
        """The session for one answer whose chain has providers of ``kinds``; None when
        nothing is to be redacted (no external provider, or the policy is ``allow``).
        Raises ``RedactionBlocked`` when the policy is ``block`` and ``question`` holds
        personal data (or could not be checked: a pattern timed out)."""
        if not any(is_external(k) for k in kinds):
            return None
        policy = await self.policy(tenant_id)
        if policy.mode == "allow":
            return None
        session = RedactionSession(policy.scanner(), restore=policy.restore)
        if policy.mode == "block":
            try:
                found = [f.detector for f in session.scanner.find(question)]
            except PatternTimeout as exc:
                found = [f"pattern:{exc.name}"]
            if found:
                raise RedactionBlocked(found, language)
        return session
