"""Transaction ids scored recently, held by the streaming driver for the duplicate check.

Ids are kept as 64-bit hashes (``pandas.util.hash_array``, SipHash with a fixed key, so
the same on every process) beside the batch that scored them and its ``scored_at``, in
sorted numpy arrays searched with ``searchsorted``: 24 bytes an id, so an hour at
1,000 tx/s is about 90 MB. New batches go to a small unsorted tail merged into the sorted
part once it grows; expired ids are dropped at each merge. A lookup only counts ids
scored at or after its ``since``, so what a batch sees does not depend on when merges ran.

Two different ids share a hash with probability about n / 2**64 per lookup (an hour of
ids at 1,000 tx/s: 2e-13); such a transaction would go to quarantine as a duplicate,
with its raw bytes, not be lost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_EMPTY_U64 = np.empty(0, dtype=np.uint64)
_EMPTY_I64 = np.empty(0, dtype=np.int64)


def hash_ids(ids) -> np.ndarray:
    """uint64 hashes of transaction ids (strings), stable across processes and runs."""
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


@dataclass
class RecentIds:
    """Hashes of scored ids with their batch id and scored_at (epoch ms)."""

    merge_fraction: float = 0.1  # merge the tail into the sorted part once it holds this share of it
    _hashes: np.ndarray = field(default_factory=lambda: _EMPTY_U64.copy())
    _batches: np.ndarray = field(default_factory=lambda: _EMPTY_I64.copy())
    _scored_at: np.ndarray = field(default_factory=lambda: _EMPTY_I64.copy())
    _tail: list[tuple[np.ndarray, int, int]] = field(default_factory=list)
    _tail_rows: int = 0

    def __len__(self) -> int:
        return len(self._hashes) + self._tail_rows

    def load(self, ids, batch_ids: np.ndarray, scored_at_ms: np.ndarray) -> None:
        """Replace the content with rows read back from ``predictions`` (the latest scoring of an id wins)."""
        hashes = hash_ids(ids)
        self._set(hashes, np.asarray(batch_ids, np.int64), np.asarray(scored_at_ms, np.int64))
        self._tail, self._tail_rows = [], 0

    def _set(self, hashes: np.ndarray, batches: np.ndarray, scored: np.ndarray) -> None:
        """Sorted by hash, one entry a hash: its latest scoring (searchsorted finds that one)."""
        order = np.lexsort((scored, hashes))
        hashes, batches, scored = hashes[order], batches[order], scored[order]
        last = np.ones(len(hashes), dtype=bool)
        last[:-1] = hashes[1:] != hashes[:-1]
        self._hashes, self._batches, self._scored_at = hashes[last], batches[last], scored[last]

    def add(self, hashes: np.ndarray, batch_id: int, scored_at_ms: int) -> None:
        """Record the ids one batch scored (they are distinct and new: the batch dropped duplicates)."""
        if len(hashes):
            self._tail.append((np.asarray(hashes, dtype=np.uint64), int(batch_id), int(scored_at_ms)))
            self._tail_rows += len(hashes)

    def discard_batch(self, batch_id: int, scored_at_ms: int) -> None:
        """Forget the ids of one batch (a replayed batch must not find its own earlier write)."""
        self._merge(None)
        keep = ~((self._batches == batch_id) & (self._scored_at == scored_at_ms))
        self._hashes, self._batches, self._scored_at = self._hashes[keep], self._batches[keep], self._scored_at[keep]

    def seen_in(self, hashes: np.ndarray, since_ms: int) -> np.ndarray:
        """For each hash, the batch id that scored it at or after ``since_ms``, else -1."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        out = np.full(len(hashes), -1, dtype=np.int64)
        if not len(hashes):
            return out
        if len(self._hashes):
            pos = np.searchsorted(self._hashes, hashes)
            pos[pos == len(self._hashes)] = 0
            hit = (self._hashes[pos] == hashes) & (self._scored_at[pos] >= since_ms)
            out[hit] = self._batches[pos[hit]]
        for tail_hashes, batch_id, scored_at in self._tail:
            if scored_at >= since_ms:
                out[np.isin(hashes, tail_hashes) & (out < 0)] = batch_id
        if self._tail_rows > max(10_000, self.merge_fraction * len(self._hashes)) or len(self._tail) > 64:
            self._merge(since_ms)
        return out

    def _merge(self, since_ms: int | None) -> None:
        """Sort the tail into the main arrays, dropping ids scored before ``since_ms``."""
        parts = [(self._hashes, self._batches, self._scored_at)]
        parts += [(h, np.full(len(h), b, np.int64), np.full(len(h), t, np.int64)) for h, b, t in self._tail]
        hashes, batches, scored = (np.concatenate(col) for col in zip(*parts))
        if since_ms is not None:
            fresh = scored >= since_ms
            hashes, batches, scored = hashes[fresh], batches[fresh], scored[fresh]
        self._set(hashes, batches, scored)
        self._tail, self._tail_rows = [], 0
