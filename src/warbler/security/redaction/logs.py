"""Log redaction: every log record's message, arguments and traceback pass the built-in
detectors (``WARBLER_REDACTION_LOGS``) and personal data becomes a bare label (``[PHONE]``).

``install`` applies ``RedactingFilter`` in the log record factory, so the record is redacted
once, when it is made, and every handler sees it redacted: uvicorn's, pytest's, one an
operator adds later. (A filter attached to handlers misses handlers added after it, and a
filter on the ``warbler`` logger misses records of its child loggers.) For a logging
configuration of your own, ``warbler.security.redaction.logs.RedactingFilter`` is an ordinary
``logging.Filter``. Placeholders in logs are never restored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from warbler.security.redaction.detectors import DETECTORS
from warbler.security.redaction.scanner import Scanner

_MARK = "_warbler_redacted"


class RedactingFilter(logging.Filter):
    def __init__(self, detectors: Sequence[str] = DETECTORS) -> None:
        super().__init__()
        self.scanner = Scanner(detectors)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            redact_record(record, self.scanner)
        except Exception:  # a log line must never fail because of redaction
            pass
        return True


def redact_record(record: logging.LogRecord, scanner: Scanner) -> None:
    done = getattr(record, _MARK, None)
    if done is not None and done[0] is record.msg and done[1] is record.args:
        return  # already redacted (by the record factory, then a handler's filter)
    record.msg = _masked(record.msg, scanner)
    if isinstance(record.args, Mapping):
        record.args = {k: _masked(v, scanner) for k, v in record.args.items()}
    elif record.args:
        record.args = tuple(_masked(a, scanner) for a in record.args)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scanner.mask(record.exc_text)
    if record.stack_info:
        record.stack_info = scanner.mask(record.stack_info)
    setattr(record, _MARK, (record.msg, record.args))


def _masked(value: Any, scanner: Scanner) -> Any:
    """Strings masked; numbers kept (``%d`` must still work); anything else masked through
    its ``str`` only when that holds personal data."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scanner.mask(value)
    try:
        text = str(value)
    except Exception:
        return value
    masked = scanner.mask(text)
    return masked if masked != text else value


_filter: RedactingFilter | None = None
_installed = False


def install(detectors: Sequence[str]) -> None:
    """Redact every log record of the process with ``detectors`` (empty: stop redacting).
    Idempotent; the last call's detectors apply."""
    global _filter, _installed
    _filter = RedactingFilter(detectors) if detectors else None
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        active = _filter
        if active is not None:
            active.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
