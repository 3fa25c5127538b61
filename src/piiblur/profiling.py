"""Where the time goes, stage by stage (decode, each detector family, each shared model, tracking,
hiding, encode): what ``bench/video.py`` reports so the cost of every step is visible.

Off by default, and then a stage costs one global read. ``StageClock.active()`` turns it on for
the ``with`` block. Times are *exclusive* (a family's time leaves out the shared models it asked
for, which are counted under their own name) and summed over threads: in a pipeline whose stages
overlap on several cores, the total exceeds the wall-clock time, and that overlap is the point.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_active: StageClock | None = None


class StageClock:
    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stacks = threading.local()

    @contextmanager
    def active(self) -> Iterator[StageClock]:
        global _active
        previous, _active = _active, self
        try:
            yield self
        finally:
            _active = previous

    def _enter(self, name: str) -> None:
        stack: list[list[object]] = self._stacks.__dict__.setdefault("frames", [])
        stack.append([name, time.perf_counter(), 0.0])  # name, start, time spent in nested stages

    def _exit(self) -> None:
        stack: list[list[object]] = self._stacks.frames
        name, start, nested = stack.pop()
        assert isinstance(name, str) and isinstance(start, float) and isinstance(nested, float)
        elapsed = time.perf_counter() - start
        if stack:
            parent_nested = stack[-1][2]
            assert isinstance(parent_nested, float)
            stack[-1][2] = parent_nested + elapsed
        with self._lock:
            self.seconds[name] += elapsed - nested
            self.calls[name] += 1

    def table(self) -> list[tuple[str, float, int]]:
        """(stage, seconds, calls), costliest first."""
        with self._lock:
            return sorted(((n, s, self.calls[n]) for n, s in self.seconds.items()), key=lambda row: -row[1])


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the time of the ``with`` block under ``name`` when a clock is active."""
    clock = _active
    if clock is None:
        yield
        return
    clock._enter(name)
    try:
        yield
    finally:
        clock._exit()
