"""Incremental detokenisation with stop strings that may span token boundaries.

Text is released only once it can no longer turn into a stop string (a suffix that begins
one is held back) and never ends in half a UTF-8 character (a trailing U+FFFD is held back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[Sequence[int]], str]


class IncrementalText:
    def __init__(self, decode: Decode, stop: Sequence[str]) -> None:
        self._decode = decode
        self._stop = tuple(stop)
        self._longest = max((len(s) for s in self._stop), default=0)
        self.text = ""  # released so far
        self.stopped = False

    def update(self, ids: Sequence[int]) -> str:
        """The newly released text after the output became ``ids``; sets ``stopped`` when a
        stop string appeared (the text ends before it)."""
        full = self._decode(ids)
        start = max(0, len(self.text) - self._longest)
        hit = self._first_stop(full, start)
        if hit is not None:
            self.stopped = True
            return self._release(full[:hit])
        return self._release(full[: len(full) - self._held_back(full)])

    def flush(self, ids: Sequence[int]) -> str:
        """Release everything (the request ended for another reason)."""
        return self._release(self._decode(ids))

    def _release(self, upto: str) -> str:
        delta = upto[len(self.text) :]
        if delta:
            self.text = upto
        return delta

    def _first_stop(self, full: str, start: int) -> int | None:
        found = [i for s in self._stop if (i := full.find(s, start)) >= 0]
        return min(found) if found else None

    def _held_back(self, full: str) -> int:
        held = len(full) - len(full.rstrip("\ufffd"))
        for n in range(min(self._longest - 1, len(full)), 0, -1):
            if any(s.startswith(full[-n:]) for s in self._stop):
                return max(held, n)
        return held
