"""The search tokenizer: Chinese words cut for search, English lower-cased, punctuation gone."""

from __future__ import annotations

from warbler.search.tokenize import is_cjk, tokens


def test_chinese_sentences_are_cut_into_words():
    assert tokens("我想申请退款") == ["我", "想", "申请", "退款"]
    assert "退款" in tokens("请帮我办理退款，谢谢")


def test_long_chinese_words_also_yield_their_sub_words():
    cut = tokens("中华人民共和国")
    assert {"中华", "人民", "共和国", "中华人民共和国"} <= set(cut)


def test_english_is_lower_cased_and_split_on_punctuation():
    assert tokens("Hello, World! Refunds.") == ["hello", "world", "refunds"]


def test_punctuation_and_spaces_alone_give_no_tokens():
    for text in ("", "   ", "?!...", "，。！？、；：“”", "--- *** ///"):
        assert tokens(text) == [], text


def test_mixed_chinese_english_and_digits():
    cut = tokens("订单#123 已发货!! GPT-4o 很好用")
    assert {"订单", "123", "发货", "gpt", "很"} <= set(cut)
    assert not any(ch in "".join(cut) for ch in "#! ")


def test_text_and_queries_are_cut_the_same_way():
    # The index and the query must agree, or a word in a sentence is never found.
    sentence, query = "我想申请退款", "退款"
    assert set(tokens(query)) <= set(tokens(sentence))


def test_is_cjk():
    assert is_cjk("退款") and is_cjk("a退")
    assert not is_cjk("refund") and not is_cjk("123")


def test_accented_latin_words_stay_whole():
    assert tokens("Müller café, naïve Ångström") == ["müller", "café", "naïve", "ångström"]


def test_chinese_next_to_latin_without_spaces():
    cut = tokens("iPhone15退款申请")
    assert cut[:1] == ["iphone15"] and {"退款", "申请"} <= set(cut)
