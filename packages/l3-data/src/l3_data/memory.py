"""Resident memory of this process: the current size and the peak since a reset (Linux's
``VmHWM``, reset through ``/proc/self/clear_refs``), so a worker can report the peak of one
piece of work rather than of its whole life."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return None


def reset_peak() -> bool:
    """Start a new peak measurement; False where the system cannot (then the peak read is the
    process's lifetime peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mib() -> float:
    """Resident memory now, MiB (0 where the system does not say)."""
    kib = _status_kib("VmRSS")
    return round((kib or 0.0) / 1024, 1)


def peak_rss_mib() -> float:
    """Peak resident memory since :func:`reset_peak` (or since the process started), MiB."""
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: getrusage's lifetime peak (KiB on Linux and BSD)
        kib = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return round(kib / 1024, 1)
