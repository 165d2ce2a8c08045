"""When a visitor's message should go to a person: the rules behind the reason codes.

Pure functions over text (Chinese and English), checked in this order:

- ``user_requested``: the visitor asks for a person (转人工, 人工客服, "talk to a human",
  "real person", "representative", ...). "human resources" or 人工智能 are not requests.
- ``sensitive_topic``: a word or phrase from the tenant's ``escalate_keywords``.
- ``negative_sentiment``: a word from a small zh + en lexicon or the tenant's
  ``negative_words``; an English word right after "not"/"never" (or a Chinese one after
  不/没) does not count.

``similarity`` compares two questions by their search tokens (rjieba for Chinese, light
stemming for English, function words dropped); ``SAME_QUESTION`` is the threshold at which
a visitor "asked the same thing again". ``small_talk`` recognises greetings and thanks,
which never count as a failed answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warbler.search.tokenize import is_cjk, tokens

SAME_QUESTION = 0.6
FAILED_ANSWERS_TO_ESCALATE = 2

_EN_REQUEST = [
    r"\b(?:talk|speak|chat|connect|transfer)\s+(?:me\s+)?(?:to|with)\s+(?:a|an|some|the|your|"
    r"real|live|actual)?\s*(?:human|person|people|someone|somebody|agent|representative|rep|"
    r"operator|staff|employee|manager|supervisor|customer\s+service)\b",
    r"\b(?:real|live|actual)\s+(?:human|person|people|agent|operator)\b",
    r"\bhuman\s+(?:agent|being|support|operator|assistance|help|please)\b",
    r"\b(?:customer\s+(?:service|support)\s+)?representative\b",
    r"\b(?:i\s+(?:want|need|would\s+like)|get\s+me|give\s+me|can\s+i\s+(?:have|get))\s+"
    r"(?:a|an|to\s+(?:talk|speak)\s+to\s+a)\s+(?:human|person|agent|operator)\b",
    r"^\s*(?:a\s+)?(?:human|agent|operator|representative|person)(?:\s+please)?\s*[!.?]*\s*$",
    r"\bnot\s+(?:a|the)\s+(?:bot|robot|machine)\b",
]
_ZH_REQUEST = [
    r"转人工", r"人工客服", r"人工服务", r"人工坐席", r"人工座席", r"人工处理",
    r"(?:找|要|接|转接|叫|联系)\s*(?:一下\s*)?(?:人工|真人|客服)(?!智能)",
    r"真人(?!秀|版|cs)", r"客服电话", r"活人", r"不要机器人", r"不想(?:和|跟)机器人",
    r"^\s*人工\s*[!！。?？]*\s*$",
]  # fmt: skip
REQUEST = re.compile("|".join(_EN_REQUEST + _ZH_REQUEST), re.IGNORECASE)

NEGATIVE_EN_PHRASES = (
    "fed up", "sick of", "waste of time", "not helpful", "not happy", "not satisfied",
    "rip off", "what the hell", "piece of junk",
)  # fmt: skip
NEGATIVE_EN_WORDS = frozenset(
    """angry furious annoyed annoying frustrated frustrating disappointed disappointing
    terrible horrible awful worst useless pathetic ridiculous unacceptable outrageous
    disgusting disgusted scam ripoff fraud hate stupid idiot idiotic rubbish garbage crap
    sucks wtf complain complaint dissatisfied unhappy incompetent""".split()
)
NEGATIVE_ZH = (
    "生气", "气死", "愤怒", "恼火", "火大", "失望", "太差", "很差", "真差", "差劲", "垃圾",
    "坑人", "坑爹", "骗子", "骗人", "诈骗", "投诉", "差评", "无语", "恶心", "受不了",
    "忍无可忍", "离谱", "什么鬼", "搞什么", "废物", "不满意", "不满", "浪费时间", "没什么用",
    "有什么用", "一点用都没有", "烦死", "太烂", "破玩意",
)  # fmt: skip
_NEGATORS_EN = frozenset("not no never isn't wasn't aren't don't didn't doesn't".split())
_NEGATORS_ZH = ("不", "没", "别")

_SMALL_TALK = re.compile(
    r"\b(?:hi|hello|hey|hiya|yo|thanks|thank\s+you|thank\s+u|thx|ty|cheers|ok|okay|"
    r"got\s+it|great|cool|bye|goodbye|see\s+you|good\s+(?:morning|afternoon|evening|night)|"
    r"there|you|very\s+much|so\s+much|a\s+lot|please)\b"
    r"|你好|您好|嗨|哈喽|哈啰|谢谢|多谢|谢啦|感谢|好的|好吧|知道了|明白了|再见|拜拜|"
    r"早上好|下午好|晚上好|早安|晚安|在吗|在么|嗯|哦|好|啊|呀|啦|了|吗|呢|哈|您|你",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)

_STOP_EN = frozenset(
    """a an the i me my you your we our us is are was were be been am do does did to of in
    on at for with and or but it its this that these those can could would should will
    shall may might please how what when where why which who whom hi hello hey there just
    so any some""".split()
)
_STOP_ZH = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嗯 么 我 你 您 他 她 它 我们 是 在 和 与 就 都 也 还 请 请问 一下 "
    "一个 这个 那个 呃".split()
)


@dataclass(frozen=True, slots=True)
class Detection:
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def asks_for_person(text: str) -> str | None:
    """The phrase by which the visitor asks for a person, if they do."""
    match = REQUEST.search(text)
    return match.group(0).strip() if match else None


def sensitive(text: str, keywords: list[Any]) -> str | None:
    """The first of the tenant's escalate keywords the text contains (whole words for
    Latin script, any substring for Chinese)."""
    return _first_term(text, [str(k) for k in keywords if str(k).strip()])


def negative(text: str, extra_words: Sequence[Any] = ()) -> str | None:
    """The negative word or phrase the text shows, if any."""
    lowered = text.lower()
    for phrase in NEGATIVE_EN_PHRASES:
        if re.search(rf"\b{re.escape(phrase)}\b", lowered):
            return phrase
    words = re.findall(r"[a-z']+", lowered)
    for i, word in enumerate(words):
        if word in NEGATIVE_EN_WORDS and not (i and words[i - 1] in _NEGATORS_EN):
            return word
    for term in NEGATIVE_ZH:
        at = text.find(term)
        if at >= 0 and not (term[0] not in _NEGATORS_ZH and at and text[at - 1] in _NEGATORS_ZH):
            return term
    return _first_term(text, [str(w) for w in extra_words if str(w).strip()])


def detect(text: str, *, keywords: list[Any], negative_words: list[Any]) -> Detection | None:
    """The reason this message goes to a person, or None (the bot answers)."""
    if (phrase := asks_for_person(text)) is not None:
        return Detection("user_requested", {"matched": phrase})
    if (keyword := sensitive(text, keywords)) is not None:
        return Detection("sensitive_topic", {"matched": keyword})
    if (word := negative(text, negative_words)) is not None:
        return Detection("negative_sentiment", {"matched": word})
    return None


def small_talk(text: str) -> bool:
    """Greetings, thanks, "ok", "bye" (zh or en) and nothing else."""
    rest = _SMALL_TALK.sub(" ", text)
    return not _LETTERS.search(rest)


def question_terms(text: str) -> set[str]:
    out = set()
    for token in tokens(text):
        if is_cjk(token):
            if token not in _STOP_ZH:
                out.add(token)
        elif token not in _STOP_EN and not token.isdigit():
            out.add(_stem(token))
    return out


def similarity(a: str, b: str) -> float:
    """0..1: the mean of the Dice coefficient and the overlap coefficient of the two
    questions' terms (a question repeated with a few words more still scores high)."""
    x, y = question_terms(a), question_terms(b)
    if not x or not y:
        return 1.0 if a.strip().lower() == b.strip().lower() and a.strip() else 0.0
    common = len(x & y)
    dice = 2 * common / (len(x) + len(y))
    overlap = common / min(len(x), len(y))
    return (dice + overlap) / 2


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _first_term(text: str, terms: list[str]) -> str | None:
    lowered = text.lower()
    for term in terms:
        t = term.strip().lower()
        if any(is_cjk(ch) for ch in t):
            if t in lowered:
                return term.strip()
        elif re.search(rf"(?<![\w]){re.escape(t)}(?![\w])", lowered):
            return term.strip()
    return None
