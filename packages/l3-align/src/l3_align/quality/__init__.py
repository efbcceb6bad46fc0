"""Data-quality tools for post-training data (paper 4.2.3): reward-score filtering, a topic
classifier, difficulty scoring and semantic dedup."""
