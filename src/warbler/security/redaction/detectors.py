"""The built-in PII detectors (Chinese and English text): where each kind of personal data is.

Each detector finds candidates with a regular expression, then validates them the way the
data is defined (the resident ID's ISO 7064 MOD 11-2 check digit and birth date, a card's
Luhn digit and issuer prefix, an IP address's ranges), so that order numbers, dates, prices,
versions and timestamps are left alone. Boundaries are "no digit or letter next to it", not
``\\b``: Chinese text glues numbers to characters ("手机13812345678谢谢") and ``\\b`` sees no
boundary between a CJK character and a digit.

Text is scanned through ``normalise`` (full-width digits, letters and signs to ASCII, one
character for one, so positions stay the same): "１３８１２３４５６７８" is a phone number too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from warbler.clock import utcnow

# The built-in detectors, in priority order (an earlier one wins a tie over the same span).
DETECTORS: tuple[str, ...] = ("cn_id", "bank_card", "cn_mobile", "email", "phone", "ip")
# The placeholder label of each: [PHONE_1], [ID_NUMBER_2], ...
LABELS: dict[str, str] = {
    "cn_id": "ID_NUMBER",
    "bank_card": "BANK_CARD",
    "cn_mobile": "PHONE",
    "email": "EMAIL",
    "phone": "PHONE",
    "ip": "IP",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: ``text[start:end]`` is ``value``."""

    detector: str  # a built-in name, "pattern:<name>" or "keyword"
    label: str  # the placeholder's label: PHONE, EMAIL, or a custom pattern's name
    start: int
    end: int
    value: str
    # The same datum written differently ("138 1234 5678", "13812345678") has one key.
    key: str


_FULL_WIDTH = str.maketrans(
    {**{chr(0xFF01 + i): chr(0x21 + i) for i in range(94)}, "\u3000": " ", "\u00a0": " "}
)


def normalise(text: str) -> str:
    """Full-width ASCII to ASCII, one character for one (positions are kept)."""
    return text.translate(_FULL_WIDTH)


# Not glued to a digit or a Latin letter (nor to an order-number-like prefix: #, /, -, .).
_BEFORE = r"(?<![0-9A-Za-z_#/.\-+])"
_AFTER = r"(?![0-9A-Za-z_])(?![.\-/][0-9])"


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isdigit())


# -- Chinese mobile numbers ----------------------------------------------------------------

_CN_MOBILE = re.compile(
    _BEFORE + r"(?:(?:\+|00)86[ -]?|\(\+?86\)[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}" + _AFTER
)


def _cn_mobile(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _CN_MOBILE.finditer(text):
        digits = _digits(m.group())
        yield m.start(), m.end(), digits[-11:]


# -- Chinese resident identity card numbers -------------------------------------------------

# The first two digits: a province-level division (GB/T 2260), 71 Taiwan, 81/82 HK/Macao.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83 91".split()
)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_CN_ID = re.compile(
    _BEFORE + r"([1-9][0-9]{5})[ ]?((?:18|19|20)[0-9]{6})[ ]?([0-9]{3}[0-9Xx])" + _AFTER
)
_CN_ID_15 = re.compile(_BEFORE + r"([1-9][0-9]{5})([0-9]{6})([0-9]{3})" + _AFTER)
# A legacy 15-digit number has no check digit: only taken after words that say "ID".
_ID_CONTEXT = re.compile(
    r"(?i)(身份证|证件|身份号|id\s*(card|no|number|#)|identity|identification)"
)


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-digit resident ID."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _valid_birth(yyyymmdd: str) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return date(1880, 1, 1) <= born <= utcnow().date()


def valid_cn_id(number: str) -> bool:
    """An 18-character resident ID: known province, a real birth date, the right check digit."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    if number[:2] not in _PROVINCES or not _valid_birth(number[6:14]):
        return False
    return id_check_digit(number[:17]) == number[17].upper()


def _cn_id(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _CN_ID.finditer(text):
        number = (m.group(1) + m.group(2) + m.group(3)).upper()
        if valid_cn_id(number):
            yield m.start(), m.end(), number
    for m in _CN_ID_15.finditer(text):
        area, born = m.group(1), "19" + m.group(2)
        if area[:2] in _PROVINCES and _valid_birth(born):
            if _ID_CONTEXT.search(text, max(0, m.start() - 16), m.start()):
                yield m.start(), m.end(), m.group()


# -- bank card numbers ---------------------------------------------------------------------

_CARD = re.compile(
    _BEFORE
    + r"(?:[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?"  # 4-4-4-4(-3), separated
    + r"|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}"  # 4-6-5 (American Express)
    + r"|[0-9]{6}[ -][0-9]{10,13}"  # 6-13 (19-digit UnionPay as some banks print it)
    + r"|[0-9]{13,19})"
    + _AFTER
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issuer_ok(d: str) -> bool:
    """The number starts like a payment card of its length (ISO/IEC 7812 issuer prefixes):
    Visa, Mastercard, American Express, UnionPay, JCB, Discover, Diners, Maestro, and the
    legacy 19-digit 955x cards of Chinese banks."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    if d[:2] in ("34", "37"):
        return n == 15
    if d[:2] == "35":
        return 16 <= n <= 19
    if d[:2] in ("30", "36", "38", "39"):
        return 14 <= n <= 16
    if d[0] in "56":
        return 16 <= n <= 19
    if d[0] == "2":
        return n == 16 and 2221 <= int(d[:4]) <= 2720
    if d[:3] == "955":
        return n == 19
    return False


def valid_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _issuer_ok(digits) and luhn_ok(digits)


_GROUP_SEP = re.compile(r"[ -]")


def _card(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _CARD.finditer(text):
        raw = m.group()
        # A separated number may have swallowed a following group ("… 4567 2024"): try the
        # whole, then without its last groups.
        ends = [len(raw)] + [s.start() for s in reversed(list(_GROUP_SEP.finditer(raw)))]
        for end in ends:
            digits = _digits(raw[:end])
            if valid_card(digits):
                yield m.start(), m.start() + end, digits
                break


# -- email addresses -----------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


def _email(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end(), m.group().lower()


# -- phone numbers: international, Chinese landlines, North American -------------------------

_INTL = re.compile(
    _BEFORE + r"\+[1-9][0-9]{0,3}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}" + _AFTER
)
_CN_LANDLINE = re.compile(
    _BEFORE
    + r"(?:\((?:010|02[0-9]|0[3-9][0-9]{2})\)[ -]?|(?:010|02[0-9]|0[3-9][0-9]{2})[ -])"
    + r"[2-9][0-9]{2,3}[ -]?[0-9]{4}"
    + _AFTER
)
_US = re.compile(
    _BEFORE
    + r"(?:\+?1[ .\-]?)?(?:\([2-9][0-9]{2}\)[ ]?(?P<s0>)|[2-9][0-9]{2}(?P<s1>[ .\-]))"
    + r"[2-9][0-9]{2}(?P<s2>[ .\-])[0-9]{4}"
    + _AFTER
)
_PHONE_SEP = re.compile(r"[ .\-]|(?=\()")


def _national(digits: str) -> str:
    """The key of an international number: +86 and +1 numbers as written at home, so
    "+86 138 1234 5678" and "13812345678" are one datum."""
    if digits.startswith("86") and len(digits) in (12, 13):
        return digits[2:]
    if digits.startswith("1") and len(digits) == 11:
        return digits[1:]
    return "+" + digits


def _phone(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _INTL.finditer(text):
        raw = m.group()
        ends = [len(raw)] + [s.start() for s in reversed(list(_PHONE_SEP.finditer(raw)))]
        for end in ends:
            digits = _digits(raw[:end])
            if 8 <= len(digits) <= 15:
                yield m.start(), m.start() + end, _national(digits)
                break
    for m in _CN_LANDLINE.finditer(text):
        yield m.start(), m.end(), _digits(m.group())
    for m in _US.finditer(text):
        if m.group("s1") is not None and m.group("s1") != m.group("s2"):
            continue  # 415-555.2671: not written like a phone number
        digits = _digits(m.group())
        yield m.start(), m.end(), digits[-10:]


# -- IP addresses --------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(
    r"(?<![0-9_.\-])" + rf"{_OCTET}(?:\.{_OCTET}){{3}}" + r"(?![0-9A-Za-z_])(?!\.[0-9])"
)
# "v1.2.3.4", "version 1.2.3.4", "版本 1.2.3.4", "section 1.2.3.4" are not addresses.
_NOT_AN_ADDRESS = re.compile(
    r"(?i)(?:\bv|\bver\.?|version|release|build|section|chapter|§|版本号?|章节?|条)\s*[:：]?\s*$"
)
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_.])(?:[0-9A-Fa-f]{1,4}:|:)(?:[0-9A-Fa-f]{0,4}:){1,7}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z_:])"
)


def _nobody(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback and unspecified addresses (127.0.0.1, 0.0.0.0, ::1) identify no one; keeping
    them keeps "listening on http://127.0.0.1:8000" readable in logs."""
    return address.is_loopback or address.is_unspecified


def _ip(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _IPV4.finditer(text):
        if _NOT_AN_ADDRESS.search(text, max(0, m.start() - 12), m.start()):
            continue
        if _nobody(ipaddress.IPv4Address(m.group())):
            continue
        yield m.start(), m.end(), m.group()
    for m in _IPV6.finditer(text):
        raw, start = m.group(), m.start()
        if raw.startswith(":") and not raw.startswith("::"):
            raw, start = raw[1:], start + 1  # "地址:2001:db8::1": the colon is the text's
        if "::" not in raw and raw.count(":") != 7 and not ("." in raw and raw.count(":") == 6):
            continue
        if not any(c.isdigit() for c in raw):
            continue  # "cafe::" and friends are words, not addresses
        try:
            address = ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        if _nobody(address):
            continue
        yield start, m.end(), address.compressed


Detector = Callable[[str], Iterator[tuple[int, int, str]]]
_ANY_DIGIT = re.compile(r"\d")  # any Unicode digit, full-width ones included

BUILTIN: dict[str, Detector] = {
    "cn_id": _cn_id,
    "bank_card": _card,
    "cn_mobile": _cn_mobile,
    "email": _email,
    "phone": _phone,
    "ip": _ip,
}


def find_builtin(text: str, detectors: tuple[str, ...] | list[str] = DETECTORS) -> list[Finding]:
    """Every candidate of the given detectors in ``text`` (overlaps included; see
    ``scanner.resolve``). ``text`` is normalised here; positions refer to the original."""
    out: list[Finding] = []
    if "@" not in text and "＠" not in text and not _ANY_DIGIT.search(text):
        return out  # every built-in needs a digit, or an @ (emails)
    plain = normalise(text)
    for name in detectors:
        label = LABELS[name]
        for start, end, key in BUILTIN[name](plain):
            out.append(Finding(name, label, start, end, text[start:end], f"{label}:{key}"))
    return out
