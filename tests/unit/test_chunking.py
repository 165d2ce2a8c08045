"""Chunking keeps sentences whole (Chinese 。！？； and English), respects paragraphs and
sections, stays within the size, and overlaps neighbours by whole sentences."""

from __future__ import annotations

import itertools

from warbler.kb.chunking import chunk_document, split_sentences
from warbler.kb.parsers.document import ParsedDocument, Section

ZH_SENTENCES = [
    f"第{i}条规定：退货商品必须保持原包装完好{'，且附带发票' * (i % 3)}{'。！？；'[i % 4]}"
    for i in range(40)
]
ZH = "".join(ZH_SENTENCES)


def doc(*sections: tuple[tuple[str, ...], list[str]]) -> ParsedDocument:
    return ParsedDocument("T", tuple(Section(path, tuple(paras)) for path, paras in sections))


def test_chinese_sentence_ends_split_sentences():
    assert split_sentences("你好。请问怎么退货？太好了！第一；第二") == [
        "你好。", "请问怎么退货？", "太好了！", "第一；", "第二",
    ]  # fmt: skip
    assert split_sentences("他说：“可以。”然后走了。") == ["他说：“可以。”", "然后走了。"]


def test_english_sentences_keep_abbreviations_and_decimals_whole():
    assert split_sentences("Dr. Smith pays 3.5 euros. Really? Yes!") == [
        "Dr. Smith pays 3.5 euros. ", "Really? ", "Yes!",
    ]  # fmt: skip


def test_chinese_chunks_hold_only_whole_sentences_within_the_size():
    chunks = chunk_document(doc(((), [ZH])), size=80, overlap=0)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 80
        assert all(s in ZH_SENTENCES for s in split_sentences(chunk.text)), chunk.text
    # Without overlap, the chunks are the text, in order, cut only between sentences.
    assert "".join(c.text for c in chunks) == ZH
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_overlap_repeats_the_previous_chunks_last_whole_sentences():
    chunks = chunk_document(doc(((), [ZH])), size=80, overlap=40)
    for before, after in itertools.pairwise(chunks):
        first = split_sentences(after.text)[0]
        repeated = split_sentences(before.text)[-1]
        if len(repeated) <= 40:
            assert first == repeated
            assert len(after.text) <= 80
    covered = {s for c in chunks for s in split_sentences(c.text)}
    assert covered == set(ZH_SENTENCES)


def test_a_sentence_longer_than_the_size_is_cut_at_a_comma():
    long = "，".join(f"第{i}项条件必须满足" for i in range(20)) + "。"
    chunks = chunk_document(doc(((), [long])), size=50, overlap=0)
    assert all(len(c.text) <= 50 for c in chunks)
    assert all(c.text.endswith(("，", "。")) for c in chunks)
    assert "".join(c.text for c in chunks) == long


def test_a_paragraph_that_does_not_fit_starts_the_next_chunk_instead_of_being_split():
    first = "Our store opens at nine. It closes at six on weekdays."  # 54 chars
    second = "On weekends we open at ten. We close at four on Sundays."  # 56 chars
    chunks = chunk_document(doc(((), [first, second])), size=100, overlap=0)
    assert [c.text for c in chunks] == [first, second]
    short = "Closed on holidays."
    chunks = chunk_document(doc(((), [first, short])), size=100, overlap=0)
    assert [c.text for c in chunks] == [f"{first}\n\n{short}"]


def test_chunks_never_cross_sections_and_carry_their_title_path():
    chunks = chunk_document(
        doc(
            (("Returns",), ["Return within 30 days."]),
            (("Returns", "Refunds"), ["退款在五个工作日内到账。"]),
            ((), ["No heading here."]),
        ),
        size=600,
        overlap=80,
    )
    assert [(c.position, c.title_path, c.text) for c in chunks] == [
        (0, "Returns", "Return within 30 days."),
        (1, "Returns > Refunds", "退款在五个工作日内到账。"),
        (2, "", "No heading here."),
    ]


def test_english_text_is_chunked_between_sentences():
    sentences = [f"Rule {i} says that items must be returned in their box. " for i in range(30)]
    chunks = chunk_document(doc(((), ["".join(sentences)])), size=200, overlap=60)
    for chunk in chunks:
        assert len(chunk.text) <= 200
        assert chunk.text.startswith("Rule ") and chunk.text.endswith("box.")
    # Each later chunk starts with the sentence that ended the one before it.
    for before, after in itertools.pairwise(chunks):
        assert after.text.startswith(split_sentences(before.text)[-1].strip())
