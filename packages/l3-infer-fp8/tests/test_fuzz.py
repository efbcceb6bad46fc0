"""Property tests: any damage to a pre-quantised checkpoint's config, any flag value of
``generate`` and any request body to the OpenAI-compatible server either work or give one
named error (the CLI: one line and a documented exit code; the server: a 4xx naming the
field), never a traceback or a 500.

Bounded (``max_examples``), a few seconds each on a 2-core machine."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3_core import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.errors import ModelFileError
from l3_core.exit_codes import ExitCode
from l3_core.model import Transformer
from l3_core.tokenizer import train_sentencepiece
from l3_infer_fp8.checkpoint import QUANT_CONFIG, load_quantized, save_quantized
from l3_infer_fp8.cli import main
from l3_infer_fp8.quant import quantize_model

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**4) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("q")
    args = ModelArgs.from_preset("llama3-tiny", n_layers=4)
    model = Transformer.build(args, dtype=torch.bfloat16, seed=0).eval()
    quantize_model(model, bound=900, backend="emulated")
    tok = root / "tok.model"
    tok.write_bytes(b"ranks")
    return save_quantized(model, root / "q", tokenizer=tok)


@FUZZ
@given(
    key=st.sampled_from(
        [
            "format",
            "version",
            "activation_scale_ub",
            "quantized_modules",
            "skipped_modules",
            "skipped_layers",
            "files",
        ]
    ),
    value=_json,
    raw=st.one_of(st.none(), st.binary(max_size=30)),
)
def test_a_damaged_quantisation_config_loads_or_is_a_model_file_error(quantized, key, value, raw):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "q"
        shutil.copytree(quantized, path)
        config = json.loads((path / QUANT_CONFIG).read_text())
        config[key] = value
        text = json.dumps(config).encode() if raw is None else raw
        (path / QUANT_CONFIG).write_bytes(text)
        try:
            load_quantized(path, backend="emulated")
        except ModelFileError as e:
            assert str(path) in str(e)


@FUZZ
@given(
    modules=st.lists(
        st.one_of(
            st.sampled_from(["layers.0.feed_forward.w1", "layers.9.feed_forward.w1", "output"]),
            _json,
        ),
        max_size=3,
    )
)
def test_quantised_module_names_that_do_not_fit_the_model_are_named(quantized, modules):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "q"
        shutil.copytree(quantized, path)
        config = json.loads((path / QUANT_CONFIG).read_text())
        config["quantized_modules"] = modules
        (path / QUANT_CONFIG).write_text(json.dumps(config))
        try:
            load_quantized(path, backend="emulated")
        except ModelFileError as e:
            assert str(path) in str(e)


CORPUS = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"] * 20


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    tok = train_sentencepiece(CORPUS, root / "tok.model", vocab_size=300)
    args = ModelArgs.from_preset("llama3-tiny", n_layers=2, vocab_size=tok.n_words)
    path = save_checkpoint(Transformer.build(args, dtype=torch.bfloat16, seed=0), root / "m")
    shutil.copyfile(root / "tok.model", path / "tokenizer.model")
    return path


_number = st.one_of(
    st.integers(-3, 6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["-0.5", "1.5", "0", "1e30", "x"]),
)
FLAGS = ["--max-tokens", "--temperature", "--top-p", "--seed", "--bound"]


@FUZZ
@given(flag=st.sampled_from(FLAGS), value=_number, fp8=st.booleans())
def test_any_generate_flag_value_runs_or_is_refused_in_one_line(ckpt, capsys, flag, value, fp8):
    argv = ["generate", "--checkpoint", str(ckpt), "--prompt", "the fox", "--max-tokens", "3"]
    argv += [f"{flag}={value}"] + (["--fp8", "--backend", "emulated"] if fp8 else [])
    capsys.readouterr()  # the fixture outlives one example
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: not a number of the flag's type
        assert e.code == ExitCode.USAGE
        return
    err = capsys.readouterr().err
    assert rc in (ExitCode.OK, ExitCode.CONFIG, ExitCode.INPUT), (rc, err)
    assert rc == ExitCode.OK or len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def http(ckpt):
    pytest.importorskip("fastapi", reason="the serve/test extras provide fastapi")
    from fastapi.testclient import TestClient
    from infer_helpers import make_engine

    from l3_core.checkpoint import load_checkpoint
    from l3_core.tokenizer import Tokenizer
    from l3_infer_fp8.engine.loop import EngineLoop
    from l3_infer_fp8.server.app import ServerState, create_app

    tok = Tokenizer.from_file(ckpt / "tokenizer.model")
    model = load_checkpoint(ckpt, dtype=torch.float32).eval()
    state = ServerState(EngineLoop(make_engine(model, tok)), tok, "tiny", drain_s=5)
    with TestClient(create_app(state)) as c:
        yield c


_small = st.one_of(st.integers(-2, 4), st.floats(allow_nan=True), st.text(max_size=3), st.none())
_params = {
    "max_tokens": _small,
    "temperature": _small,
    "top_p": _small,
    "n": _small,
    "seed": _small,
    "stop": st.one_of(_json, st.lists(st.text(max_size=3), max_size=2)),
    "logprobs": st.one_of(st.booleans(), _small),
    "top_logprobs": _small,
    "stream": st.booleans(),
}
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "robot"]), "content": _json}
)
_bodies = {
    "completions": st.fixed_dictionaries(
        {"model": st.sampled_from(["tiny", "other"]), "prompt": st.one_of(_json, st.text())},
        optional=_params,
    ),
    "chat/completions": st.fixed_dictionaries(
        {"model": st.just("tiny"), "messages": st.one_of(_json, st.lists(_message, max_size=3))},
        optional=_params,
    ),
}


@pytest.mark.parametrize("endpoint", sorted(_bodies))
@FUZZ
@given(data=st.data())
def test_any_request_body_is_answered_or_a_4xx_naming_the_field(http, endpoint, data):
    body = data.draw(_bodies[endpoint])
    if isinstance(body.get("max_tokens"), int):
        body["max_tokens"] = min(body["max_tokens"], 4)  # keep each answer short
    # Python's JSON (like many clients') writes NaN and Infinity: the server must refuse them.
    r = http.post(
        f"/v1/{endpoint}", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert r.status_code in (200, 400, 422), (r.status_code, r.text[:300])
    if r.status_code != 200:
        assert r.json()["error"]["message"], r.text
