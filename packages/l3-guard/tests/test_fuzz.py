"""Property tests over every checking command, the model-file reader and the server's request
bodies: any input either gets a verdict or a named error, a row that could not be checked fails
closed (never reads as safe, benign or secure), and nothing ends in a traceback or an HTTP 500.

Bounded (``max_examples``), a few seconds each on a 2-core machine."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3_core.errors import ModelFileError
from l3_core.exit_codes import ExitCode
from l3_core.model_file import ModelFile, load_model_file, save_model_file
from l3_guard.cli import main
from l3_guard.embedded import shipped_model_path
from l3_guard.text_model import LinearTextModel

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "agent", "wizard", 3]), "content": _json}
)
_row = st.one_of(
    st.fixed_dictionaries({"text": _json}),
    st.fixed_dictionaries({"text": st.text(max_size=30), "role": _json}),
    st.fixed_dictionaries({"conversation": st.one_of(_json, st.lists(_message, max_size=3))}),
    st.dictionaries(st.sampled_from(["text", "id", "conversation", "role", "x"]), _json),
    _json,
)
_line = st.one_of(
    _row.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
)

# What a row that could not be checked says, per command: the fail-closed verdict.
FAILED = {
    "moderate": lambda r: r["label"] == "unsafe",
    "prompt-guard": lambda r: r["label"] != "BENIGN",
    "check": lambda r: r["decision"] == "BLOCK",
}
COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")


@pytest.mark.parametrize("command", sorted(FAILED))
@FUZZ
@given(lines=st.lists(_line, max_size=6))
def test_any_jsonl_gives_one_row_per_line_and_failures_fail_closed(
    tmp_path, capsys, command, lines
):
    src = tmp_path / "fuzz.jsonl"
    src.write_bytes(b"\n".join(lines))
    rc = main([command, "--jsonl", str(src)])
    out, err = capsys.readouterr()
    if src.read_bytes().startswith(COMPRESSED):
        # Read as gzip/zstd by content: random bytes after the magic are a corrupt file.
        assert rc == ExitCode.INPUT and len(err.strip().splitlines()) == 1 and str(src) in err
        return
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in rows] == [i + 1 for i, ln in enumerate(lines) if ln.strip()]
    for r in rows:
        assert "error" not in r or FAILED[command](r), r
    errors = any("error" in r for r in rows)
    assert rc in (ExitCode.OK, ExitCode.FINDINGS, ExitCode.INPUT)
    assert (rc == ExitCode.INPUT) == errors
    assert "Traceback" not in err


def _garbled(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data[: max(cut, 0)] if cut < len(data) else data)
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


_SHIPPED = shipped_model_path("prompt_guard.npz").read_bytes()


@FUZZ
@given(
    cut=st.integers(0, len(_SHIPPED)),
    flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=4),
)
def test_a_truncated_or_garbled_model_file_loads_or_is_a_model_file_error(cut, flips):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "pg.npz"
        p.write_bytes(_garbled(_SHIPPED, cut, flips))
        try:
            LinearTextModel.load(p)
        except ModelFileError as e:
            assert str(p) in str(e)


@FUZZ
@given(meta=st.dictionaries(st.sampled_from(["labels", "head", "features", "idf_default"]), _json))
def test_a_model_file_with_a_wrong_header_is_a_model_file_error(tmp_path, meta):
    good = load_model_file(shipped_model_path("prompt_guard.npz"))
    p = tmp_path / "pg.npz"
    save_model_file(p, ModelFile(good.kind, {**good.meta, **meta}, good.arrays))
    try:
        LinearTextModel.load(p)
    except ModelFileError as e:
        assert str(p) in str(e)


def test_a_truncated_model_file_on_the_command_line_is_one_line_with_exit_5(tmp_path, capsys):
    bad = tmp_path / "pg.npz"
    bad.write_bytes(_SHIPPED[: len(_SHIPPED) // 2])
    assert main(["prompt-guard", "--model", str(bad), "hello"]) == ExitCode.MODEL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]


@pytest.fixture(scope="module")
def http():
    pytest.importorskip("fastapi", reason="the serve/test extras provide fastapi")
    from fastapi.testclient import TestClient

    from l3_guard.server import create_app

    with TestClient(create_app()) as c:
        yield c


_bodies = st.one_of(
    _row,
    st.fixed_dictionaries({"language": _json, "code": _json}),
    st.fixed_dictionaries({"conversation": st.lists(_message, max_size=3)}),
)


@pytest.mark.parametrize("endpoint", ["scan-code", "prompt-guard", "moderate", "check"])
@FUZZ
@given(body=_bodies)
def test_any_request_body_is_answered_or_refused_with_422_never_500(http, endpoint, body):
    # Python's JSON writes NaN and Infinity, as many clients do: the server must cope.
    r = http.post(
        f"/v1/{endpoint}", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert r.status_code in (200, 422), (r.status_code, r.text)
    if r.status_code == 200 and r.json().get("error"):
        verdict = r.json()
        assert (
            verdict.get("label") in ("unsafe", "INJECTION", "JAILBREAK")
            or verdict.get("decision") == "BLOCK"
            or verdict.get("treatment") == "BLOCK"
        ), verdict


@FUZZ
@given(raw=st.binary(max_size=60))
def test_any_body_bytes_are_a_verdict_or_a_client_error_never_500(http, raw):
    r = http.post("/v1/moderate", content=raw, headers={"content-type": "application/json"})
    # 400: not UTF-8; 422: not JSON or not a request object.
    assert r.status_code in (200, 400, 422), (r.status_code, r.text)


@pytest.mark.parametrize("endpoint", ["moderate", "check"])
def test_a_conversation_that_is_not_a_list_is_refused_over_http_not_safe(http, endpoint):
    r = http.post(f"/v1/{endpoint}", json={"conversation": "What is a good banana bread?"})
    assert r.status_code == 422
    assert any(e["loc"][-1] == "conversation" for e in r.json()["detail"]), r.json()


def test_a_nan_in_a_field_of_the_wrong_type_is_a_422_not_a_500(http):
    # {"text": NaN} is JSON to Python; echoing the value back used to fail as a 500.
    r = http.post(
        "/v1/prompt-guard", content=b'{"text": NaN}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
