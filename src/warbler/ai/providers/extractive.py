"""The offline default provider: answers from curated answers and retrieved passages, no model.

It reads the retrieval the engine put in ``ChatRequest.extra["retrieval"]``. Grounded: the
few passage sentences most relevant to the question, each group followed by an ``[n]`` marker
that matches the citation list it returns in ``Done.extra["citations"]``, then one honest
line saying no language model wrote it. Not grounded: it says it does not know and offers a
person. Chinese and English alike; it answers in the question's language where it can.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from warbler.ai.providers.base import ChatRequest, Done, StreamEvent, TextDelta, Usage
from warbler.kb.types import Citation, Passage, Retrieval
from warbler.search.tokenize import is_cjk, tokens

NAME = "extractive"

# Enough to answer, short enough to read in a chat bubble.
MAX_SENTENCES = 3
MAX_CHARS = {"zh": 220, "en": 480}
PIECE_CHARS = 12  # streamed in pieces of about this many characters

HONEST = {
    "zh": "（以上内容直接摘自知识库，未经大语言模型生成，详见引用来源。）",
    "en": "(Quoted from the knowledge base; no language model wrote this. See the sources.)",
}
DONT_KNOW = {
    "zh": "抱歉，我不知道这个问题的答案：知识库里没有找到相关内容。需要为您转接人工客服吗？"
    "（我只根据知识库作答，未使用大语言模型。）",
    "en": "Sorry, I don't know: I found nothing about this in the knowledge base. Would you "
    "like me to connect you with a person? (I answer only from the knowledge base, without "
    "a language model.)",
}

# Words that say nothing about what a question is about, so they must not pick a sentence.
_STOP = frozenset(
    """a an the is are was were be been do does did i you we they he she it my your our their
    me to of in on at for from by with and or not no what which who whom how when where why can
    could would should will shall may might must this that these those there here have has had
    about into please tell know any some if then than so just as up out get
    的 了 吗 呢 吧 啊 呀 我 你 您 他 她 它 我们 你们 是 在 有 和 与 或 也 都 就 要 想 能 可以 请问
    请 怎么 怎样 怎么样 如何 什么 哪 哪些 哪里 多少 几 吗 么 一个 这 那 这个 那个 一下""".split()
)

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s+")
_MARKDOWN_LEAD = re.compile(r"^\s*(?:[-*+>]+|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#")


def language_of(text: str) -> str:
    """ "zh" when the text is mostly Chinese (by letters, not bytes), else "en"."""
    cjk = sum(1 for ch in text if is_cjk(ch))
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "zh" if cjk and cjk * 3 >= latin else "en"


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage: int  # index into the retrieval's passages (its rank)
    position: int  # order inside the passage
    text: str
    score: float


class ExtractiveProvider:
    """A ``ChatProvider`` that never calls a model (see the module docstring)."""

    name = NAME

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        question = _last_user_text(request)
        language = request.extra.get("language") or language_of(question)
        retrieval = request.extra.get("retrieval")
        text, citations, grounded, curated_id = compose(
            question, retrieval if isinstance(retrieval, Retrieval) else None, language
        )
        for piece in _pieces(text):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let a flusher or a cancellation in between pieces
        yield Done(
            usage=Usage(),
            finish_reason="stop",
            model=NAME,
            extra={
                "citations": citations,
                "grounded": grounded,
                "curated_answer_id": curated_id,
            },
        )

    async def aclose(self) -> None:
        return None


def compose(
    question: str, retrieval: Retrieval | None, language: str
) -> tuple[str, list[Citation], bool, str | None]:
    """(answer text, citations numbered as the ``[n]`` markers, grounded, curated answer id)."""
    lang = "zh" if language.startswith("zh") else "en"
    if retrieval is not None and retrieval.curated is not None:
        hit = retrieval.curated
        return f"{hit.answer.strip()} [1]", [hit.citation], True, hit.answer_id
    if retrieval is None or not retrieval.grounded or not retrieval.passages:
        return DONT_KNOW[lang], [], False, None
    chosen = _choose(question, list(retrieval.passages), lang)
    citations: list[Citation] = []
    numbers: dict[int, int] = {}
    parts: list[str] = []
    for i, sentence in enumerate(chosen):
        number = numbers.get(sentence.passage)
        if number is None:
            citations.append(retrieval.passages[sentence.passage].citation)
            number = numbers[sentence.passage] = len(citations)
        nxt = chosen[i + 1] if i + 1 < len(chosen) else None
        # One marker after each run of sentences from the same passage.
        marker = "" if nxt is not None and nxt.passage == sentence.passage else f" [{number}]"
        parts.append(sentence.text + marker)
    body = parts[0] if parts else ""
    for part in parts[1:]:
        # Chinese runs on without spaces; a marker or Latin text needs one.
        body += ("" if body[-1:] > "\u2fff" and part[:1] > "\u2fff" else " ") + part
    return f"{body}\n\n{HONEST[lang]}", citations, True, None


def _choose(question: str, passages: list[Passage], lang: str) -> list[_Sentence]:
    """The best few sentences, in reading order (by passage rank, then position)."""
    wanted = _weights(question)
    candidates: list[_Sentence] = []
    for rank, passage in enumerate(passages):
        for position, text in enumerate(_sentences(passage.text)):
            words = _words(text)
            if not words:
                continue
            overlap = sum(wanted.get(w, 0.0) for w in set(words))
            score = overlap / math.sqrt(len(words) + 4)
            if score > 0 and (language_of(text) == lang):
                score *= 1.5  # the question's language, where the passages have it
            score /= 1 + 0.5 * rank  # trust the retriever's order
            candidates.append(_Sentence(rank, position, text, score))
    if not candidates:
        return []
    ranked = sorted(candidates, key=lambda c: -c.score)
    if ranked[0].score <= 0:
        # Grounded by meaning only (no shared words): the opening of the best passage.
        ranked = [c for c in candidates if c.passage == 0][:2] or ranked[:1]
    else:
        ranked = [c for c in ranked if c.score >= ranked[0].score * 0.65]
    limit = MAX_CHARS[lang]
    chosen: list[_Sentence] = []
    used = 0
    for c in ranked:
        if len(chosen) == MAX_SENTENCES:
            break
        if chosen and used + len(c.text) > limit:
            continue
        chosen.append(c)
        used += len(c.text)
    if len(chosen) == 1 and len(chosen[0].text) > limit:
        only = chosen[0]
        chosen = [_Sentence(only.passage, only.position, _clip(only.text, limit), only.score)]
    return sorted(chosen, key=lambda c: (c.passage, c.position))


def _weights(question: str) -> dict[str, float]:
    """Question words, longer (more specific) ones weighing more."""
    out: dict[str, float] = {}
    for word in _words(question):
        length = len(word) * (2 if is_cjk(word) else 1)
        out[word] = max(out.get(word, 0.0), math.log2(1 + length))
    return out


def _sentences(text: str) -> list[str]:
    """Sentences of a passage, without Markdown headings (the citation names the section)."""
    out = []
    for line in text.splitlines():
        if _HEADING.match(line):
            continue
        for raw in _SENTENCE_END.split(line):
            sentence = _MARKDOWN_LEAD.sub("", raw or "").strip()
            if len(sentence) >= 2:
                out.append(sentence)
    return out


def _words(text: str) -> list[str]:
    """Search tokens without stop words, English plurals folded ("cards" → "card")."""
    out = []
    for word in tokens(text):
        if word in _STOP:
            continue
        if word.isascii() and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(",;:，；：") + "…"


def _pieces(text: str) -> list[str]:
    """Word-ish pieces (every few Chinese characters), so the text streams like a model's."""
    out: list[str] = []
    current = ""
    for token in re.findall(r"\s+|[^\s]+\s*", text):
        current += token
        if len(current) >= PIECE_CHARS or "\n" in token:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    # A long run without spaces (Chinese) is cut into fixed pieces.
    return [p[i : i + PIECE_CHARS] for p in out for i in range(0, len(p), PIECE_CHARS)]


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return ""
