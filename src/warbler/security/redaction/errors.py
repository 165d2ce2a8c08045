"""The error a ``block`` policy raises: the question holds personal data and is not sent."""

from __future__ import annotations

from collections.abc import Sequence

from warbler.errors import InvalidRequest

# What each detector finds, as a user reads it.
KINDS = {
    "en": {
        "cn_mobile": "a mobile number",
        "phone": "a phone number",
        "cn_id": "an ID card number",
        "bank_card": "a bank card number",
        "email": "an email address",
        "ip": "an IP address",
        "keyword": "a restricted word",
    },
    "zh": {
        "cn_mobile": "手机号",
        "phone": "电话号码",
        "cn_id": "身份证号",
        "bank_card": "银行卡号",
        "email": "邮箱地址",
        "ip": "IP 地址",
        "keyword": "受限关键词",
    },
}
BLOCKED = {
    "en": "Your message contains personal data ({kinds}). This workspace does not send personal "
    "data to an external AI service, so the message was not sent. Please remove it and ask "
    "again.",
    "zh": "您的消息包含个人信息（{kinds}）。根据本组织的隐私策略，个人信息不会发送给外部 AI "
    "服务，因此这条消息没有发送。请删除这些信息后重新提问。",
}


def describe(detectors: Sequence[str], language: str) -> str:
    lang = "zh" if language == "zh" else "en"
    names: list[str] = []
    for d in detectors:
        name = KINDS[lang].get(d) or d.removeprefix("pattern:")
        if name not in names:
            names.append(name)
    return ("、" if lang == "zh" else ", ").join(names)


class RedactionBlocked(InvalidRequest):
    """400 ``pii_blocked``; ``details.detectors`` names what was found (never the values)."""

    code = "pii_blocked"

    def __init__(self, detectors: Sequence[str], language: str = "en") -> None:
        self.detectors = list(dict.fromkeys(detectors))
        super().__init__(self.user_message(language), details={"detectors": self.detectors})

    def user_message(self, language: str) -> str:
        lang = "zh" if language == "zh" else "en"
        return BLOCKED[lang].format(kinds=describe(self.detectors, lang))
