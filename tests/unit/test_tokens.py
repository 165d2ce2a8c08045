"""Token counting: offline, OpenAI's documented figures, Chinese, truncation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warbler.ai import tokens
from warbler.ai.providers.base import ChatMessage, ToolCall

# OpenAI cookbook "How to count tokens with tiktoken": 129 prompt tokens for gpt-4-0613 and
# 124 for gpt-4o (the same messages, its two encodings).
COOKBOOK = (
    ChatMessage(
        "system",
        "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    ),
    ChatMessage("system", "New synergies will help drive top-line growth.", name="example_user"),
    ChatMessage(
        "system",
        "Things working well together will increase revenue.",
        name="example_assistant",
    ),
    ChatMessage(
        "system",
        "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
        name="example_user",
    ),
    ChatMessage(
        "system",
        "Let's talk later when we're less busy about how to do better.",
        name="example_assistant",
    ),
    ChatMessage(
        "user",
        "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    ),
)
CHINESE = "我们的营业时间是周一至周五上午九点到下午六点，节假日休息。"


def test_counting_works_offline_from_a_cold_cache(tmp_path: Path) -> None:
    """A fresh process with an empty cache and every connect refused still counts."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise AssertionError("tokens tried to reach the network")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from warbler.ai import tokens
        print(tokens.count_text("hello world"), tokens.count_text("hello world", "gpt-4o"))
        """
    )
    cache = tmp_path / "cache"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2"]
    assert len(list(cache.iterdir())) == 2  # both vocabularies were seeded there


def test_model_names_pick_their_encoding() -> None:
    assert tokens.encoding_name("gpt-4o-mini") == "o200k_base"
    assert tokens.encoding_name("gpt-4.1") == "o200k_base"
    assert tokens.encoding_name("o3-mini") == "o200k_base"
    assert tokens.encoding_name("openai/gpt-4o") == "o200k_base"
    assert tokens.encoding_name("gpt-4-0613") == "cl100k_base"
    assert tokens.encoding_name("deepseek-chat") == "cl100k_base"
    assert tokens.encoding_name("claude-sonnet-4") == "cl100k_base"
    assert tokens.encoding_name(None) == "cl100k_base"


def test_text_counts_match_tiktoken() -> None:
    assert tokens.count_text("tiktoken is great!") == 6
    assert tokens.count_text("") == 0
    # Special-token markers typed by a user are just text, never an error.
    assert tokens.count_text("<|endoftext|>") > 1


@pytest.mark.parametrize(("model", "expected"), [("gpt-4-0613", 129), ("gpt-4o", 124)])
def test_message_counts_match_openais_documented_figures(model: str, expected: int) -> None:
    assert tokens.count_messages(COOKBOOK, model) == expected


def test_tool_calls_count_towards_the_prompt() -> None:
    plain = (ChatMessage("assistant", ""),)
    calling = (ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "search", {"q": "x"}),)),)
    assert tokens.count_messages(calling) > tokens.count_messages(plain)


@pytest.mark.parametrize("model", [None, "gpt-4o"])
def test_chinese_counts_about_one_token_per_character(model: str | None) -> None:
    n = tokens.count_text(CHINESE, model)
    assert 0.5 * len(CHINESE) <= n <= 1.5 * len(CHINESE)


def test_truncation_keeps_whole_characters_within_the_budget() -> None:
    for n in range(1, 12):
        cut = tokens.truncate_to_tokens(CHINESE, n)
        assert CHINESE.startswith(cut)
        assert "\ufffd" not in cut
        assert tokens.count_text(cut) <= n
    assert tokens.truncate_to_tokens(CHINESE, 10_000) == CHINESE
    assert tokens.truncate_to_tokens("hello world again", 2) == "hello world"
    assert tokens.truncate_to_tokens("anything", 0) == ""
