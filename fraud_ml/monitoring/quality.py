"""Fraud-class quality and per-batch aggregates of the ``predictions`` table (pure pandas).

Conventions: quality metrics use rows whose replayed ``label`` is not null; the "recent window"
is the last ``N`` minutes up to the newest scored batch (not the wall clock, so a stopped stream
still shows its last window).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_ml.errors import ConfigError

log = logging.getLogger(__name__)

COUNT_COLUMNS: list[str] = ["rows", "flagged", "labeled", "frauds", "tp", "fp", "fn", "tn"]
# Sum of the stored probabilities: the frauds the model expects (at the production rate it is
# corrected to, train.production_fraud_rate), beside the frauds the labels show.
EXPECTED_COLUMN = "expected_frauds"
# A micro-batch is (query_id, batch_id): batch ids start at 0 again with a new checkpoint.
# Tables of earlier releases have no query_id; their batches read as query "".
BATCH_KEY: list[str] = ["query_id", "batch_id"]


# --- quality
@dataclass(frozen=True)
class Quality:
    """Fraud-class quality at the model's decision: counts and precision/recall/F1.

    Rates are ``nan`` when undefined (no predicted / no actual positives).
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def labeled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r):
            return math.nan
        return 2 * p * r / (p + r) if p + r else 0.0

    def confusion_frame(self) -> pd.DataFrame:
        """2x2 confusion matrix: rows = actual class, columns = decision."""
        return pd.DataFrame(
            [[self.tn, self.fp], [self.fn, self.tp]],
            index=pd.Index(["actual legit (0)", "actual fraud (1)"], name="actual"),
            columns=["predicted legit (0)", "predicted fraud (1)"],
        )


def quality_from_aggregates(agg: pd.DataFrame) -> Quality:
    """Sum the confusion counts of :func:`batch_aggregates` rows."""
    if agg is None or agg.empty:
        return Quality(0, 0, 0, 0)
    return Quality(*(int(agg[c].sum()) for c in ("tp", "fp", "fn", "tn")))


# --- per-batch aggregates
def query_ids(frame: pd.DataFrame) -> pd.Series:
    """The ``query_id`` column as strings ("" where absent or null)."""
    if "query_id" not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame["query_id"].astype(object).where(frame["query_id"].notna(), "").astype(str)


def batch_index(frame: pd.DataFrame) -> pd.MultiIndex:
    """(query_id, batch_id) of each row."""
    return pd.MultiIndex.from_arrays([query_ids(frame), frame["batch_id"].astype("int64")], names=BATCH_KEY)


def commit_times(rows: pd.DataFrame, metrics: pd.DataFrame) -> pd.Series:
    """The ``committed_at`` of each row's batch (NaT where ``metrics`` has no row for it yet)."""
    commits = pd.Series(metrics["committed_at"].to_numpy(), index=batch_index(metrics))
    commits = commits[~commits.index.duplicated(keep="last")]
    return pd.Series(commits.reindex(batch_index(rows)).to_numpy(), index=rows.index)


def batch_aggregates(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per micro-batch (query_id, batch_id) from prediction rows.

    Columns: query_id, batch_id, scored_at (earliest in the batch; the streaming job uses
    one value per micro-batch), rows, flagged, labeled, frauds, tp, fp, fn, tn, expected_frauds.
    """
    if rows is None or rows.empty:
        return empty_aggregates()
    label = rows["label"]
    known = label.notna()
    y = label.fillna(-1).astype("int64")
    d = rows["decision"].fillna(0).astype("int64")
    frame = pd.DataFrame(
        {
            "query_id": query_ids(rows),
            "batch_id": rows["batch_id"].astype("int64"),
            "scored_at": rows["scored_at"],
            "rows": 1,
            "flagged": (d == 1).astype("int64"),
            "labeled": known.astype("int64"),
            "frauds": (y == 1).astype("int64"),
            "tp": ((d == 1) & (y == 1)).astype("int64"),
            "fp": ((d == 1) & (y == 0)).astype("int64"),
            "fn": ((d == 0) & (y == 1)).astype("int64"),
            "tn": ((d == 0) & (y == 0)).astype("int64"),
            EXPECTED_COLUMN: rows["probability"].astype("float64").fillna(0.0),
        }
    )
    return _group_aggregates(frame)


def merge_aggregates(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    """Combine two aggregate frames (a batch split across reads is summed)."""
    parts = [f for f in (old, new) if f is not None and not f.empty]
    if not parts:
        return empty_aggregates()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return _group_aggregates(pd.concat(parts, ignore_index=True))


def _group_aggregates(frame: pd.DataFrame) -> pd.DataFrame:
    spec = {"scored_at": "min", **{c: "sum" for c in COUNT_COLUMNS}, EXPECTED_COLUMN: "sum"}
    out = frame.groupby(BATCH_KEY, as_index=False, sort=False).agg(spec)
    return out.sort_values(["scored_at", "batch_id"], kind="stable")[
        [*BATCH_KEY, "scored_at", *COUNT_COLUMNS, EXPECTED_COLUMN]
    ].reset_index(drop=True)


def empty_aggregates() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="int64") for c in ["batch_id", *COUNT_COLUMNS]})
    frame.insert(0, "query_id", pd.Series(dtype=object))
    frame.insert(2, "scored_at", pd.Series(dtype="datetime64[us, UTC]"))
    frame[EXPECTED_COLUMN] = pd.Series(dtype="float64")
    return frame


def totals(agg: pd.DataFrame) -> dict[str, int]:
    """Whole-run counts: transactions scored, flagged, actual frauds, labeled rows, batches."""
    if agg is None or agg.empty:
        return {"transactions": 0, "flagged": 0, "frauds": 0, "labeled": 0, "batches": 0, "expected_frauds": 0.0}
    return {
        "transactions": int(agg["rows"].sum()),
        "flagged": int(agg["flagged"].sum()),
        "frauds": int(agg["frauds"].sum()),
        "labeled": int(agg["labeled"].sum()),
        "batches": int(len(agg)),
        "expected_frauds": float(agg[EXPECTED_COLUMN].sum()),
    }


def recent(frame: pd.DataFrame, time_col: str, minutes: float) -> pd.DataFrame:
    """Rows whose ``time_col`` is within ``minutes`` of the newest value (inclusive)."""
    if frame is None or frame.empty:
        return frame
    newest = frame[time_col].max()
    return frame[frame[time_col] >= newest - pd.Timedelta(minutes=float(minutes))]


# --- time intervals
def parse_interval(interval: str) -> pd.Timedelta:
    """A fixed-length pandas interval such as ``1min``, ``30s``, ``1h``; ConfigError if not."""
    try:
        delta = pd.Timedelta(pd.tseries.frequencies.to_offset(str(interval)))
    except (ValueError, TypeError):
        raise ConfigError(f"'{interval}' is not a fixed time interval (examples: 30s, 1min, 5min, 1h)") from None
    if delta <= pd.Timedelta(0):
        raise ConfigError(f"time interval '{interval}' must be positive")
    return delta


def describe_interval(interval: str) -> str:
    """Human words for an interval: ``1min`` -> ``1 minute``, ``30s`` -> ``30 seconds``."""
    seconds = parse_interval(interval).total_seconds()
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds:g} seconds"


def fraud_rate_per_interval(agg: pd.DataFrame, interval: str) -> pd.DataFrame:
    """Counts and rates per fixed ``interval`` of ``scored_at`` (empty intervals included).

    Index: interval start (UTC). Columns: transactions, flagged, frauds, labeled,
    fraud_rate (= frauds / labeled rows) and flag_rate (= flagged / transactions);
    rates are NaN for an interval without rows.
    """
    delta = parse_interval(interval)
    if agg is None or agg.empty:
        return pd.DataFrame(
            columns=["transactions", "flagged", "frauds", "labeled", "fraud_rate", "flag_rate", "expected_fraud_rate"]
        )
    frame = agg.assign(interval_start=agg["scored_at"].dt.floor(delta))
    grouped = frame.groupby("interval_start")[["rows", "flagged", "frauds", "labeled"]].sum()
    expected = frame.groupby("interval_start")[EXPECTED_COLUMN].sum()
    full = pd.date_range(grouped.index.min(), grouped.index.max(), freq=delta, name="interval_start")
    out = grouped.reindex(full, fill_value=0).rename(columns={"rows": "transactions"}).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["fraud_rate"] = (out["frauds"] / out["labeled"]).where(out["labeled"] > 0)
        out["flag_rate"] = (out["flagged"] / out["transactions"]).where(out["transactions"] > 0)
        out["expected_fraud_rate"] = (expected.reindex(full, fill_value=0.0) / out["transactions"]).where(
            out["transactions"] > 0
        )
    return out


# --- score distribution
def score_edges(bins: int) -> np.ndarray:
    """Equal-width probability bins on [0, 1]."""
    return np.linspace(0.0, 1.0, int(bins) + 1)


def score_counts(probability: pd.Series, label: pd.Series, bins: int) -> np.ndarray:
    """Counts of shape (3, bins): rows = legit (label 0), fraud (label 1), unlabeled."""
    edges = score_edges(bins)
    p = np.clip(pd.to_numeric(probability, errors="coerce").to_numpy(dtype="float64"), 0.0, 1.0)
    y = pd.Series(label).reset_index(drop=True)
    ok = ~np.isnan(p)
    idx = np.clip(np.searchsorted(edges, p[ok], side="right") - 1, 0, bins - 1)
    groups = [(y[ok].to_numpy() == 0), (y[ok].to_numpy() == 1), y[ok].isna().to_numpy()]
    return np.stack([np.bincount(idx[g], minlength=bins) for g in groups]).astype("int64")


def score_histogram_frame(counts: np.ndarray, bins: int) -> pd.DataFrame:
    """Long frame for charts: bin_start, bin, class, count, share (of that class's rows)."""
    edges = score_edges(bins)
    rows = []
    for name, row in zip(("legit (0)", "fraud (1)", "unlabeled"), counts):
        total = row.sum()
        for i, n in enumerate(row):
            rows.append(
                {
                    "bin_start": edges[i],
                    "bin": f"{edges[i]:.2f}-{edges[i + 1]:.2f}",
                    "class": name,
                    "count": int(n),
                    "share": (n / total) if total else 0.0,
                }
            )
    frame = pd.DataFrame(rows)
    present = [name for name, row in zip(("legit (0)", "fraud (1)", "unlabeled"), counts) if row.sum() > 0]
    return frame[frame["class"].isin(present)].reset_index(drop=True)


# --- alerts
def latest_alerts(flagged: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` most recent flagged rows (newest batch first, then highest probability)."""
    if flagged is None or flagged.empty:
        return flagged
    ordered = flagged.sort_values(
        ["scored_at", "batch_id", "probability"], ascending=[False, False, False], kind="stable"
    )
    return ordered.head(int(n)).reset_index(drop=True)
