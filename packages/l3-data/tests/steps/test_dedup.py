from __future__ import annotations

import numpy as np

from l3_data.steps.dedup import normalize_url
from l3_data.steps.global_arrays import keep_first


def test_normalize_url_merges_spellings_of_one_page():
    same = [
        "https://www.Example.com/a/b/?utm_source=x&q=1#top",
        "http://example.com/a/b?q=1",
        "http://example.com:80/a/b?q=1&fbclid=zz",
    ]
    assert len({normalize_url(u) for u in same}) == 1
    assert normalize_url("http://example.com/a?q=2") != normalize_url("http://example.com/a?q=1")
    assert normalize_url("http://example.com/a?x=1&y=2") == normalize_url(
        "http://example.com/a?y=2&x=1"
    )


def test_keep_first_marks_first_occurrence_of_each_row():
    keys = np.array([[1, 2], [3, 4], [1, 2], [1, 3], [3, 4]], dtype=np.uint64)
    assert keep_first(keys).tolist() == [True, True, False, True, False]
