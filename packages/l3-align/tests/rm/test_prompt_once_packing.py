"""Prompt-once packing scores each response exactly as scoring (prompt, response) alone."""

from __future__ import annotations

import pytest
import torch

from l3_align.errors import AlignInputError
from l3_align.rm.model import RewardModel
from l3_align.rm.packing import Group, pack_groups, prompt_once_mask
from l3_core.args import ModelArgs
from l3_core.model import Transformer


def tiny_reward_model(seed: int = 0, n_kv_heads: int = 2) -> RewardModel:
    args = ModelArgs(
        dim=32, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads, vocab_size=64, max_seq_len=128
    )
    rm = RewardModel(Transformer.build(args, seed=seed))
    rm.init_score(torch.Generator().manual_seed(seed))
    return rm.eval()


def random_groups(seed: int, n: int) -> list[Group]:
    g = torch.Generator().manual_seed(seed)

    def ids(lo: int, hi: int) -> list[int]:
        length = int(torch.randint(lo, hi, (1,), generator=g))
        return torch.randint(1, 64, (length,), generator=g).tolist()

    return [
        Group(ids(1, 12), [ids(1, 9) for _ in range(int(torch.randint(1, 4, (1,), generator=g)))])
        for _ in range(n)
    ]


@pytest.mark.parametrize("shuffle", [False, True])
def test_packed_scores_equal_separate_scores_fp32(shuffle: bool) -> None:
    rm = tiny_reward_model()
    groups = random_groups(1, 5)
    gen = torch.Generator().manual_seed(3) if shuffle else None
    with torch.no_grad():
        packed = rm.score_groups(groups, generator=gen)
        for g, scores in zip(groups, packed):
            alone = rm.score_sequences([list(g.prompt) + list(r) for r in g.responses])
            torch.testing.assert_close(scores, alone, rtol=0, atol=1e-5)


def test_shuffled_layout_moves_responses_but_not_scores() -> None:
    groups = [Group([1, 2, 3], [[4, 5], [6], [7, 8, 9]])]
    plain = pack_groups(groups)
    shuffled = pack_groups(groups, generator=torch.Generator().manual_seed(5))
    assert plain.tokens[0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert sorted(shuffled.tokens[0].tolist()) == plain.tokens[0].tolist()
    # the last index of each response still points at that response's last token
    for pk in (plain, shuffled):
        assert pk.tokens.flatten()[pk.last_index].tolist() == [5, 6, 9]


def test_positions_continue_from_the_prompt_for_every_response() -> None:
    pk = pack_groups([Group([1, 2, 3], [[4, 5], [6, 7, 8]]), Group([1], [[2]])], pad_id=0)
    assert pk.positions[0].tolist() == [0, 1, 2, 3, 4, 3, 4, 5]
    assert pk.positions[1].tolist()[:2] == [0, 1]
    assert pk.tokens[1].tolist() == [1, 2, 0, 0, 0, 0, 0, 0]


def test_mask_lets_a_response_see_the_prompt_and_itself_only() -> None:
    segments = torch.tensor([[0, 0, 1, 1, 2, -1]])
    m = prompt_once_mask(segments)[0, 0].int().tolist()
    assert m == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]


def test_empty_response_is_an_input_error() -> None:
    with pytest.raises(AlignInputError, match="group 0"):
        pack_groups([Group([1], [[2], []])])
