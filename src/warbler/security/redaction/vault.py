"""Placeholders for one request: the same datum gets the same ``[PHONE_1]`` wherever it
appears (system prompt, history, tool results), and placeholders in the model's answer are
put back, also when a stream splits one across deltas.

The vault lives in memory for one answer and is never stored or logged.
"""

from __future__ import annotations

import re
from typing import Any

from warbler.security.redaction.detectors import Finding
from warbler.security.redaction.scanner import Scanner

PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*?)_([0-9]{1,6})\]")
# The longest a placeholder can be: "[" + a 24-character label + "_" + 6 digits + "]".
MAX_PLACEHOLDER = 33
_PARTIAL = re.compile(r"\[[A-Z0-9_]*\Z")


class Vault:
    def __init__(self) -> None:
        self._by_key: dict[str, str] = {}  # finding key -> placeholder
        self._values: dict[str, str] = {}  # placeholder -> the value as first written
        self._counts: dict[str, int] = {}  # label -> placeholders handed out

    def __len__(self) -> int:
        return len(self._values)

    def placeholder(self, finding: Finding) -> str:
        found = self._by_key.get(finding.key)
        if found is None:
            n = self._counts.get(finding.label, 0) + 1
            self._counts[finding.label] = n
            found = f"[{finding.label}_{n}]"
            self._by_key[finding.key] = found
            self._values[found] = finding.value
        return found

    def redact(self, text: str, scanner: Scanner) -> tuple[str, list[Finding]]:
        """``text`` with every finding replaced by its placeholder, and the findings."""
        findings = scanner.find(text)
        if not findings:
            return text, []
        parts: list[str] = []
        at = 0
        for f in findings:
            parts += [text[at : f.start], self.placeholder(f)]
            at = f.end
        parts.append(text[at:])
        return "".join(parts), findings

    def restore(self, text: str) -> str:
        """Placeholders this vault handed out, back to their values (others stay)."""
        if not self._values or "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._values.get(m.group(), m.group()), text)

    def restore_value(self, value: Any) -> Any:
        """``restore`` through JSON-like values (a tool call's arguments)."""
        if isinstance(value, str):
            return self.restore(value)
        if isinstance(value, dict):
            return {k: self.restore_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.restore_value(v) for v in value]
        return value


class StreamRestorer:
    """Restores a stream of text deltas: holds back a tail that may be the start of a
    placeholder ("…call [PHO") until the next delta says what it is."""

    def __init__(self, vault: Vault, enabled: bool = True) -> None:
        self.vault = vault
        self.enabled = enabled
        self._pending = ""

    def feed(self, text: str) -> str:
        if not self.enabled:
            return text
        pending = self._pending + text
        partial = _PARTIAL.search(pending, max(0, len(pending) - MAX_PLACEHOLDER))
        cut = partial.start() if partial is not None else len(pending)
        self._pending = pending[cut:]
        return self.vault.restore(pending[:cut])

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return self.vault.restore(out) if self.enabled else out
