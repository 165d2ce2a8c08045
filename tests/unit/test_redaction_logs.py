"""Personal data never reaches a log line: message, arguments, traceback, any handler."""

from __future__ import annotations

import io
import logging

from warbler.security.redaction import logs

PHONE, EMAIL, CARD = "13812345678", "zhang.san@example.com", "6222021234567890128"


def handler_on(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return out


def test_installed_redaction_reaches_handlers_added_afterwards():
    logs.install(["cn_mobile", "email", "bank_card", "ip"])
    try:
        logger = logging.getLogger("warbler.test.redaction.child")
        out = handler_on(logger)  # a handler added after install, on a child logger
        logger.info("user %s wrote from %s", EMAIL, "10.1.2.3:5123")
        logger.info({"phone": PHONE})  # not a string message
        logger.info("card %(card)s, %(n)d tries", {"card": CARD, "n": 3})
        try:
            raise ValueError(f"bad phone {PHONE}")
        except ValueError:
            logger.exception("lookup failed for 手机号%s谢谢", PHONE)
        text = out.getvalue()
        for value in (PHONE, EMAIL, CARD, "10.1.2.3"):
            assert value not in text, text
        assert "user [EMAIL] wrote from [IP]:5123" in text
        assert "card [BANK_CARD], 3 tries" in text
        assert "lookup failed for 手机号[PHONE]谢谢" in text and "bad phone [PHONE]" in text
    finally:
        logs.install(list(logs.DETECTORS))


def test_uvicorn_access_records_keep_their_argument_types():
    """uvicorn's access formatter unpacks ``record.args``: numbers must stay numbers."""
    logs.install(["ip"])
    try:
        record = logging.getLogger("uvicorn.access").makeRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("198.51.100.23:5000", "GET", "/health", "1.1", 200), None,
        )  # fmt: skip
        assert record.args == ("[IP]:5000", "GET", "/health", "1.1", 200)
        assert record.getMessage() == '[IP]:5000 - "GET /health HTTP/1.1" 200'
    finally:
        logs.install(list(logs.DETECTORS))


def test_an_empty_detector_list_turns_log_redaction_off():
    logs.install([])
    try:
        record = logging.makeLogRecord({"msg": "mail %s", "args": (EMAIL,)})
        factory_record = logging.getLogRecordFactory()(
            "x", logging.INFO, __file__, 1, "mail %s", (EMAIL,), None
        )
        assert EMAIL in record.getMessage() and EMAIL in factory_record.getMessage()
    finally:
        logs.install(list(logs.DETECTORS))


def test_the_filter_works_on_its_own_in_a_custom_logging_config():
    out = io.StringIO()
    h = logging.StreamHandler(out)
    h.addFilter(logs.RedactingFilter())
    record = logging.makeLogRecord({"msg": "ip %s mail %s", "args": ("2001:db8::1", EMAIL)})
    h.handle(record)
    assert out.getvalue().strip() == "ip [IP] mail [EMAIL]"
