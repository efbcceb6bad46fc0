"""The reward model (Llama 3 paper, 4.1.2): an l3-core trunk with a scalar head, trained on
ranked responses packed prompt-once."""

from l3_align.rm.checkpoint import load_reward_model, save_reward_model
from l3_align.rm.losses import PAIRS, RANKED, ranking_loss
from l3_align.rm.model import RewardModel
from l3_align.rm.packing import Group, PackedGroups, pack_groups

__all__ = [
    "PAIRS",
    "RANKED",
    "Group",
    "PackedGroups",
    "RewardModel",
    "load_reward_model",
    "pack_groups",
    "ranking_loss",
    "save_reward_model",
]
