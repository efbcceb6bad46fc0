from __future__ import annotations

import numpy as np
import pytest

from l3_data.memory import peak_rss_mib, reset_peak, rss_mib


def test_peak_covers_an_allocation_and_a_reset_forgets_it():
    a = np.ones(
        25_000_000
    )  # 191 MiB, touched; glibc maps an array this large and unmaps it on free
    high = peak_rss_mib()
    assert high >= rss_mib() >= 190
    del a
    if not reset_peak():
        pytest.skip("this system cannot reset the peak (no /proc/self/clear_refs)")
    assert peak_rss_mib() < high - 150
