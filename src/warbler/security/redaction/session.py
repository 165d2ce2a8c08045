"""One answer's redaction: a policy's scanner and the vault of its placeholders."""

from __future__ import annotations

from typing import Any

from warbler.security.redaction.scanner import Scanner
from warbler.security.redaction.vault import StreamRestorer, Vault


class RedactionSession:
    """Shared by every external provider of one answer's chain and every round of its tool
    loop, so one datum has one placeholder in everything the model is sent."""

    def __init__(self, scanner: Scanner, *, restore: bool = True) -> None:
        self.scanner = scanner
        self.restore_answers = restore
        self.vault = Vault()
        self.detectors: set[str] = set()  # what was found, for the caller's records
        self._done: dict[str, str] = {}  # text -> redacted (the system prompt repeats)

    def text(self, text: str) -> str:
        """Raises ``PatternTimeout`` (the caller must not send the text then)."""
        if not text:
            return text
        done = self._done.get(text)
        if done is None:
            done, findings = self.vault.redact(text, self.scanner)
            self.detectors.update(f.detector for f in findings)
            self._done[text] = done
        return done

    def value(self, value: Any) -> Any:
        """``text`` through JSON-like values (a tool call's arguments)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def name(self, name: str | None) -> str | None:
        """A participant name (letters, digits, _ and - only on the wire): "PHONE_1"."""
        if not name:
            return name
        return self.text(name).replace("[", "").replace("]", "")

    def restorer(self) -> StreamRestorer:
        """For the answer's text: restored unless the policy says ``restore: false``."""
        return StreamRestorer(self.vault, enabled=self.restore_answers)

    def restore_arguments(self, value: Any) -> Any:
        """Tool arguments are always restored: tools run here, on the asker's behalf."""
        return self.vault.restore_value(value)
