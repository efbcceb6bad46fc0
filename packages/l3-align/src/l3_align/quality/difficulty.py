"""Difficulty scores (paper 4.2.3): Instag-style intention counting, here the number of topics
a prompt touches with at least ``threshold`` probability under the topic classifier."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from l3_align.quality.topics import TopicClassifier


def intention_counts(
    classifier: TopicClassifier, prompts: Sequence[str], threshold: float = 0.2
) -> np.ndarray:
    """[prompts] number of topics with probability >= ``threshold`` (at least 1)."""
    p = classifier.probabilities(prompts)
    return np.maximum((p >= threshold).sum(axis=1), 1)
