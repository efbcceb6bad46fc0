"""Stop strings that span token boundaries, stop ids, and text held back while streaming."""

from __future__ import annotations

from infer_helpers import CharDecoder

from l3_infer_fp8.engine import Engine, EngineConfig, SamplingParams
from l3_infer_fp8.engine.text import IncrementalText


class PieceDecoder:
    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)


def test_stop_string_across_tokens_is_cut_and_never_streamed():
    dec = PieceDecoder(["ab", "c<", "/s", "top>", "zz"])
    text = IncrementalText(dec.decode, ["</stop>"])
    released = [text.update([0, 1, 2, 3, 4][: n + 1]) for n in range(4)]
    assert released == ["ab", "c", "", ""]  # "<", "</s", "</stop" were held back
    assert text.stopped and text.text == "abc"


def test_held_back_text_is_released_when_it_stops_matching():
    dec = PieceDecoder(["x<", "/s", "y"])
    text = IncrementalText(dec.decode, ["</stop>"])
    assert text.update([0]) == "x"
    assert text.update([0, 1]) == ""
    assert text.update([0, 1, 2]) == "</sy"
    assert not text.stopped


def test_half_a_character_is_held_back():
    dec = PieceDecoder(["a\ufffd", "é"])
    text = IncrementalText(lambda ids: "aé" if ids == [0, 1] else dec.decode(ids), [])
    assert text.update([0]) == "a"
    assert text.update([0, 1]) == "é"


def _run(engine, prompt, params):
    rid = engine.add_request(prompt, params)
    outs = []
    while engine.has_unfinished():
        outs += [o for o in engine.step() if o.request_id == rid]
    return outs


def test_engine_stops_on_a_stop_string_and_on_a_stop_id(model):
    dec = CharDecoder()
    free = _run(Engine(model, tokenizer=dec), [1, 2, 3], SamplingParams(max_tokens=12))
    ids = [t for o in free for t in o.new_token_ids]
    full = dec.decode(ids)
    stop = full[4:7]  # three letters spanning tokens 4..6
    cut = full.index(stop)
    outs = _run(
        Engine(model, tokenizer=dec), [1, 2, 3], SamplingParams(max_tokens=12, stop=(stop,))
    )
    assert "".join(o.new_text for o in outs) == full[:cut]
    assert outs[-1].finish_reason == "stop" and outs[-1].finished
    by_id = _run(
        Engine(model, tokenizer=dec, stop_token_ids={ids[5]}),
        [1, 2, 3],
        SamplingParams(max_tokens=12),
    )
    first = ids.index(ids[5])
    got = [t for o in by_id for t in o.new_token_ids]
    assert got == ids[: first + 1] and by_id[-1].finish_reason == "stop"
    assert "".join(o.new_text for o in by_id) == full[:first]  # the stop id is not text
    ignored = _run(
        Engine(model, tokenizer=dec, stop_token_ids={ids[5]}),
        [1, 2, 3],
        SamplingParams(max_tokens=12, ignore_eos=True),
    )
    assert [t for o in ignored for t in o.new_token_ids] == ids
    assert ignored[-1].finish_reason == "length"


def test_max_tokens_and_context_end_finish_with_length(model):
    engine = Engine(model, EngineConfig(num_blocks=64))
    outs = _run(engine, [1] * 508, SamplingParams(max_tokens=50))
    assert sum(len(o.new_token_ids) for o in outs) == 4  # 512-token context
    assert outs[-1].finish_reason == "length"
