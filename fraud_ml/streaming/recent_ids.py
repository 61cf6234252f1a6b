"""Transaction ids scored recently, held by the streaming driver for the duplicate check.

Ids are kept as 64-bit hashes (``pandas.util.hash_array``, SipHash with a fixed key, so
the same on every process) beside the batch that scored them and its ``scored_at``: 24 bytes
an id, so an hour at 1,000 tx/s is about 90 MB. They sit in a small log-structured set of
sorted numpy runs searched with ``searchsorted``: each batch adds one sorted run; runs are
merged into a middle run once there are many, and the middle run into the main one once it
holds a quarter of it. Merging sorted runs is a linear pass (a stable sort of runs), and
expired ids are dropped then. A lookup only counts ids scored at or after its ``since``, so
what a batch sees does not depend on when merges ran.

Two different ids share a hash with probability about n / 2**64 per lookup (an hour of
ids at 1,000 tx/s: 2e-13); such a transaction would go to quarantine as a duplicate,
with its raw bytes, not be lost.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def map_large_allocations(threshold_bytes: int) -> bool:
    """Have glibc serve allocations of ``threshold_bytes`` or more by ``mmap`` and unmap them when freed.

    glibc's default threshold starts at 128 KiB and rises to each large block freed, up to
    32 MiB, after which the merges' arrays (an hour of ids at 1,000 tx/s: 29 MB each) come
    from the heap and their freed peaks stay resident. Simulated 60 minutes at 1,000 tx/s,
    batches of 250: the driver's RSS grew by 284 MiB by default, by 95 MiB (the data
    itself) with a fixed 1 MiB threshold. Returns False where the C library has no
    ``mallopt`` (not glibc), leaving the allocator as it is.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("no mallopt in this C library: large freed arrays stay with the allocator")
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))


def hash_ids(ids) -> np.ndarray:
    """uint64 hashes of transaction ids (strings), stable across processes and runs."""
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


@dataclass
class _Run:
    """Hashes sorted ascending (one entry a hash: its latest scoring), their batch ids and scored_at."""

    hashes: np.ndarray
    batches: np.ndarray
    scored_at: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def empty(cls) -> "_Run":
        return cls(np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64))

    @classmethod
    def merged(cls, runs: list["_Run"], since_ms: int | None = None) -> "_Run":
        """One run of ``runs`` (later runs win on equal hashes), without entries scored before ``since_ms``."""
        hashes = np.concatenate([r.hashes for r in runs])
        batches = np.concatenate([r.batches for r in runs])
        scored = np.concatenate([r.scored_at for r in runs])
        if since_ms is not None:
            keep = scored >= since_ms
            hashes, batches, scored = hashes[keep], batches[keep], scored[keep]
        order = np.argsort(hashes, kind="stable")  # runs are sorted: timsort merges them in linear passes
        hashes, batches, scored = hashes[order], batches[order], scored[order]
        last = np.ones(len(hashes), dtype=bool)
        last[:-1] = hashes[1:] != hashes[:-1]
        return cls(hashes[last], batches[last], scored[last])

    def find(self, hashes: np.ndarray, since_ms: int, out: np.ndarray) -> None:
        """Write into ``out`` (where still -1) the batch of each hash found here at or after ``since_ms``."""
        if not len(self.hashes):
            return
        pos = np.searchsorted(self.hashes, hashes)
        pos[pos == len(self.hashes)] = 0
        hit = (self.hashes[pos] == hashes) & (self.scored_at[pos] >= since_ms) & (out < 0)
        out[hit] = self.batches[pos[hit]]


@dataclass
class RecentIds:
    """Hashes of scored ids with their batch id and scored_at (epoch ms)."""

    max_tail_runs: int = 16  # per-batch runs kept before they are merged into the middle run...
    max_tail_share: float = 0.1  # ...or once they hold this share of the main run (min_tail_rows at least)
    main_fraction: float = 0.25  # the middle run is merged into the main one past this share of it
    min_tail_rows: int = 50_000
    _main: _Run = field(default_factory=_Run.empty)
    _middle: _Run = field(default_factory=_Run.empty)
    _tail: list[_Run] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._main) + len(self._middle) + sum(len(r) for r in self._tail)

    def load(self, ids, batch_ids: np.ndarray, scored_at_ms: np.ndarray) -> None:
        """Replace the content with rows read back from ``predictions`` (the latest scoring of an id wins)."""
        hashes = hash_ids(ids)
        scored = np.asarray(scored_at_ms, np.int64)
        order = np.argsort(scored, kind="stable")  # oldest first: the latest scoring of a hash is kept
        self._main = _Run.merged([_Run(hashes[order], np.asarray(batch_ids, np.int64)[order], scored[order])])
        self._middle, self._tail = _Run.empty(), []

    def add(self, hashes: np.ndarray, batch_id: int, scored_at_ms: int) -> None:
        """Record the ids one batch scored (distinct within the batch)."""
        if len(hashes):
            hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
            n = len(hashes)
            self._tail.append(_Run(hashes, np.full(n, batch_id, np.int64), np.full(n, scored_at_ms, np.int64)))

    def discard_batch(self, batch_id: int, scored_at_ms: int) -> None:
        """Forget the ids of one batch (a replayed batch must not find its own earlier write)."""
        run = _Run.merged([self._main, self._middle, *self._tail])
        keep = ~((run.batches == batch_id) & (run.scored_at == scored_at_ms))
        self._main = _Run(run.hashes[keep], run.batches[keep], run.scored_at[keep])
        self._middle, self._tail = _Run.empty(), []

    def seen_in(self, hashes: np.ndarray, since_ms: int) -> np.ndarray:
        """For each hash, the batch id that scored it at or after ``since_ms``, else -1 (newest runs first)."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        out = np.full(len(hashes), -1, dtype=np.int64)
        if len(hashes):
            for run in (*reversed(self._tail), self._middle, self._main):
                run.find(hashes, since_ms, out)
        self._compact(since_ms)
        return out

    def _compact(self, since_ms: int) -> None:
        tail_rows = sum(len(r) for r in self._tail)
        if len(self._tail) > self.max_tail_runs or tail_rows > max(
            self.min_tail_rows, self.max_tail_share * len(self._main)
        ):
            self._middle = _Run.merged([self._middle, *self._tail], since_ms)
            self._tail = []
        if len(self._middle) > self.main_fraction * max(len(self._main), 1):
            self._main = _Run.merged([self._main, self._middle], since_ms)
            self._middle = _Run.empty()
