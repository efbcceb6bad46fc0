"""Contamination analysis (paper section 5.1.4): an n-gram hash index of the training corpus,
the share of each benchmark example's tokens covered by corpus n-grams, and the estimated
performance gain of the contaminated examples (Table 15)."""

from l3_data.contamination.gain import gain_curve, performance_gain, read_scores
from l3_data.contamination.index import IndexSpec, NgramIndex, build_index
from l3_data.contamination.ngrams import covered_tokens, ngram_hashes
from l3_data.contamination.query import coverage, read_bench, score_examples
from l3_data.contamination.run import ContaminationJob, gain_report, run_contamination

__all__ = [
    "ContaminationJob",
    "IndexSpec",
    "NgramIndex",
    "build_index",
    "coverage",
    "covered_tokens",
    "gain_curve",
    "gain_report",
    "ngram_hashes",
    "performance_gain",
    "read_bench",
    "read_scores",
    "run_contamination",
    "score_examples",
]
