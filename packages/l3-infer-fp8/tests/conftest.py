"""Fixtures: tiny fp32 models, a trained tokenizer, the app served over HTTP on 127.0.0.1."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from infer_helpers import TEXT, client_for, make_engine, tiny_model

from l3_core.model import Transformer
from l3_core.tokenizer.sentencepiece_bpe import train_sentencepiece


@pytest.fixture(scope="session")
def model() -> Transformer:
    return tiny_model()


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return train_sentencepiece(
        [TEXT], tmp_path_factory.mktemp("tok") / "tokenizer.model", vocab_size=400
    )


@pytest.fixture(scope="session")
def chat_model():
    return tiny_model(seed=3, vocab_size=768)


@pytest.fixture(scope="module")
def served(chat_model, tokenizer):
    pytest.importorskip("openai", reason="the API tests use the official client")
    from l3_infer_fp8.engine.loop import EngineLoop
    from l3_infer_fp8.server.app import ServerState, create_app
    from l3_infer_fp8.server.background import BackgroundServer

    state = ServerState(
        EngineLoop(make_engine(chat_model, tokenizer)), tokenizer, "tiny", drain_s=5
    )
    with BackgroundServer(create_app(state)) as server:
        yield SimpleNamespace(server=server, client=client_for(server), state=state)
