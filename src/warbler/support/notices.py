"""What the visitor is told when their conversation changes hands, in Chinese or English.

Each notice is a system message: ``text`` for people, ``data.support`` for the widget (see
``states.py``). Times are written in the team's local time with the zone's name.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

REASONS = {
    "user_requested": ("you asked for a person", "您要求转接人工"),
    "no_answer": ("I could not find an answer", "我没有找到答案"),
    "repeated_failure": ("my answers did not help", "我的回答没能帮到您"),
    "negative_sentiment": ("you seem unhappy with my help", "您似乎对我的回答不满意"),
    "sensitive_topic": ("a person should handle this topic", "这个问题需要人工处理"),
    "bot_error": ("I ran into a problem", "我遇到了问题"),
    "agent_takeover": ("a colleague is taking over", "同事将接手"),
    "transfer": ("you are being transferred", "正在为您转接"),
    "other": ("a person will help you", "将由人工为您服务"),
}
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def zh(locale: str) -> bool:
    return locale.lower().startswith("zh")


def minutes_text(seconds: int, locale: str) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if zh(locale):
        return f"{minutes} 分钟"
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def local_time_text(when: datetime, timezone: str, locale: str) -> str:
    """``Monday 2 March 09:00 (Asia/Shanghai)`` / ``3月2日（周一）09:00（Asia/Shanghai）``."""
    local = when.astimezone(ZoneInfo(timezone))
    hhmm = local.strftime("%H:%M")
    if zh(locale):
        return (
            f"{local.month}月{local.day}日（{_WEEKDAYS_ZH[local.weekday()]}）{hhmm}"
            f"（{timezone} 时间）"
        )
    return (
        f"{_WEEKDAYS_EN[local.weekday()]} {local.day} {_MONTHS_EN[local.month - 1]} {hhmm} "
        f"({timezone} time)"
    )


def queued(reason: str, position: int, wait_seconds: int, locale: str) -> str:
    why_en, why_zh = REASONS.get(reason, REASONS["other"])
    if zh(locale):
        return (
            f"正在为您转接人工客服（{why_zh}）。您目前排在第 {position} 位，"
            f"预计等待约 {minutes_text(wait_seconds, locale)}。在此期间机器人不会再回复。"
        )
    return (
        f"Connecting you with a person ({why_en}). You are number {position} in the queue; "
        f"the expected wait is about {minutes_text(wait_seconds, locale)}. The bot will stay "
        "quiet until then."
    )


def closed(reason: str, opens_at: datetime | None, timezone: str, locale: str) -> str:
    why_en, why_zh = REASONS.get(reason, REASONS["other"])
    if opens_at is None:
        if zh(locale):
            return f"已为您转接人工客服（{why_zh}）。客服团队目前不在线，有人上线后会在这里回复您。"
        return (
            f"I've asked for a person ({why_en}). Our team is offline right now; someone will "
            "reply here as soon as they are back."
        )
    when = local_time_text(opens_at, timezone, locale)
    if zh(locale):
        return (
            f"已为您转接人工客服（{why_zh}）。现在是非工作时间，人工客服将于 {when} 起回复您。"
            "您的问题已保留，请不要关闭对话。"
        )
    return (
        f"I've asked for a person ({why_en}). Our team is outside its office hours; a person "
        f"will reply from {when}. Your request is kept in the queue."
    )


def assigned(agent_name: str, locale: str) -> str:
    if zh(locale):
        return f"人工客服 {agent_name} 已接入，正在为您服务。"
    return f"{agent_name} has joined the conversation and will help you from here."


def transferred_to_agent(agent_name: str, locale: str) -> str:
    if zh(locale):
        return f"您的会话已转接给 {agent_name}。"
    return f"Your conversation has been transferred to {agent_name}."


def transferred_to_team(team_name: str, locale: str) -> str:
    if zh(locale):
        return f"您的会话已转接到「{team_name}」团队，请稍候。"
    return f"Your conversation has been transferred to the {team_name} team; please wait a moment."


def resolved(locale: str) -> str:
    if zh(locale):
        return "本次会话已结束，感谢您的耐心。请为本次服务打分（1-5 分）。如有其他问题，直接发消息即可。"
    return (
        "This conversation has been marked as resolved. Thank you for your patience! Please "
        "rate our help from 1 to 5. Send a message any time if you need anything else."
    )
