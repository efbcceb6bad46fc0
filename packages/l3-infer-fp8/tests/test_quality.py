"""Agreement and KL against an independent computation, the sweep's rows, the text-set reader's
exclusions, and the reward comparison with a stand-in scorer."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_core import ModelArgs
from l3_core.errors import InputError
from l3_core.model import Transformer
from l3_infer_fp8 import quality
from l3_infer_fp8.quant import quantize_model


def _model(seed: int = 0) -> Transformer:
    return Transformer.build(
        ModelArgs.from_preset("llama3-tiny", n_layers=4), dtype=torch.bfloat16, seed=seed
    ).eval()


SEQS = [[1, 5, 9, 200, 3, 4, 7, 8], [2, 2, 2, 10, 11]]


def test_a_model_agrees_with_itself_exactly():
    model = _model()
    result = quality.compare(model, model, SEQS)
    assert result.tokens == 13 and result.top1_agreement == 1.0
    assert result.kl_mean == 0.0 and result.kl_max == 0.0
    assert sum(b["tokens"] for b in result.by_position) == 13


def test_agreement_and_kl_equal_an_independent_computation():
    ref, fp8 = _model(), _model()
    quantize_model(fp8, skip_layers=(), bound=5, backend="emulated")
    result = quality.compare(ref, fp8, SEQS)
    agree, kls = [], []
    with torch.no_grad():
        for s in SEQS:
            t = torch.tensor([s])
            p, q = ref(t)[0].double(), fp8(t)[0].double()
            agree += (p.argmax(-1) == q.argmax(-1)).tolist()
            kls += (
                F.kl_div(
                    F.log_softmax(q, -1), F.log_softmax(p, -1), log_target=True, reduction="none"
                )
                .sum(-1)
                .tolist()
            )
    assert result.top1_agreement == pytest.approx(sum(agree) / len(agree))
    assert result.kl_mean == pytest.approx(sum(kls) / len(kls), rel=1e-3, abs=1e-7)
    assert result.kl_max == pytest.approx(max(kls), rel=1e-3, abs=1e-7)
    assert result.kl_mean > 0


def test_sweep_has_a_row_per_bound_and_rule_with_its_layers():
    rows = quality.sweep(_model(), SEQS, bounds=(10, 1200), backend="emulated")
    assert [(r["bound"], r["skip"]) for r in rows] == [
        (b, rule) for b in (10.0, 1200.0) for rule in quality.SKIP_RULES
    ]
    layers = {r["skip"]: r["quantized_layers"] for r in rows}
    assert layers == {
        "first+last": [1, 2],
        "none": [0, 1, 2, 3],
        "first": [1, 2, 3],
        "last": [0, 1, 2],
    }
    table = quality.format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| 1200 | first+last | 1,2 |" in table


def test_text_set_excludes_rows_with_their_reason(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"text": "abc"}\n{"prompt": "hi"}\n{"other": 1}\n[1]\n{"text": ""}\nnot json\n'
    )
    ts = quality.read_text_set(data, lambda t: [1] + [ord(c) for c in t], max_tokens=2)
    assert ts.sequences == [[1, 97]] and ts.prompts == ["hi"]
    reasons = {(r.line, r.reason.split(":")[0]) for r in ts.exclusions.rows}
    assert {line for line, _ in reasons} == {3, 4, 5, 6}
    assert (3, "no string field 'text' or 'prompt'") in reasons


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.dictionaries(
                st.sampled_from(["text", "prompt", "x"]),
                st.one_of(st.text(max_size=8), st.integers()),
                max_size=3,
            ).map(json.dumps),
        ),
        max_size=6,
    )
)
def test_property_reader_never_crashes(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "d.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    try:
        ts = quality.read_text_set(path, lambda t: [ord(c) for c in t], max_tokens=8)
    except InputError:
        return  # e.g. undecodable bytes: one named error
    assert all(2 <= len(s) <= 8 for s in ts.sequences)


def test_reward_comparison_and_plot(tmp_path):
    ref, fp8 = _model(), _model()
    quantize_model(fp8, backend="emulated")
    result = quality.reward_comparison(
        ref,
        fp8,
        ["a", "bb", "ccc"],
        lambda p: [1] * len(p) + [2],
        lambda ids: "x" * len(ids),
        lambda p, r: len(p) + len(r) / 10,
        max_new_tokens=4,
    )
    assert result["scores"]["bf16"] == [1.4, 2.4, 3.4] and len(result["scores"]["fp8"]) == 3
    assert result["bf16"]["mean"] == pytest.approx(2.4) and result["bf16"][
        "median"
    ] == pytest.approx(2.4)
    png = quality.plot_reward_distributions(result, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_l3_align_means_no_scorer():
    try:
        import l3_align  # noqa: F401
    except ImportError:
        assert quality.load_reward_scorer("anything") is None
    else:
        pytest.skip("l3-align is installed: the missing-package path cannot be observed")
