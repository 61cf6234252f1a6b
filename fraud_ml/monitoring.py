"""Monitoring computations for the dashboard, notebooks and drift job.

Two layers:

* **Pure functions on pandas frames** (no I/O): confusion counts and fraud-class
  quality, per-batch aggregates, fraud rate per time interval, latency over time,
  measured throughput, latency and score histograms, PSI.
* **Incremental Delta reading** with the ``deltalake`` package (no Spark, no JVM):
  :class:`DeltaIncremental` remembers which data files it has already read and, on
  each poll, reads only the files added since (projected to the needed columns).
  A poll that finds no new table version does no data I/O at all. Files removed
  (overwrite, OPTIMIZE) trigger one full re-read. :class:`LiveMonitor` builds on it
  and keeps *aggregates* of the ``predictions`` table (one row per micro-batch,
  histogram counts, the flagged rows) rather than the rows themselves, so memory
  and per-tick work stay small as the table grows.

Conventions: quality metrics use rows whose replayed ``label`` is not null; the
"recent window" is the last ``N`` minutes up to the newest scored batch (not the
wall clock, so a stopped stream still shows its last window).
"""
from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds

from fraud_ml.errors import ConfigError

if TYPE_CHECKING:
    from fraud_ml.config import Config

log = logging.getLogger(__name__)

# Columns of ``predictions`` the live monitor reads (plus the amount column, see LiveMonitor).
CORE_COLUMNS: list[str] = ["query_id", "batch_id", "scored_at", "probability", "decision", "label", "kafka_timestamp"]
ALERT_COLUMNS: list[str] = ["transaction_id", "model_version", "reasons", "source"]
METRICS_COLUMNS: list[str] = [
    "query_id", "batch_id", "model_version", "started_at", "committed_at", "rows", "quarantined", "flagged",
    "processing_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "latency_max_ms", "rows_per_s",
]
LATENCY_PERCENTILE_COLUMNS: list[str] = ["latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"]
COUNT_COLUMNS: list[str] = ["rows", "flagged", "labeled", "frauds", "tp", "fp", "fn", "tn"]
# Sum of the stored probabilities: the frauds the model expects (at the production rate it is
# corrected to, train.production_fraud_rate), beside the frauds the labels show.
EXPECTED_COLUMN = "expected_frauds"
# A micro-batch is (query_id, batch_id): batch ids start at 0 again with a new checkpoint.
# Tables of earlier releases have no query_id; their batches read as query "".
BATCH_KEY: list[str] = ["query_id", "batch_id"]

# End-to-end latency histogram edges in milliseconds (last bin is open-ended).
LATENCY_EDGES_MS: tuple[float, ...] = (
    0, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, math.inf,
)
PSI_EPS = 1e-4  # floor for empty bins in PSI (avoids log(0))
MAX_FLAGGED_KEPT = 5_000     # newest flagged rows kept for the alerts table
MAX_PENDING_LATENCY_ROWS = 500_000  # rows waiting for their batch's committed_at


# ----------------------------------------------------------------------------- quality
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


def confusion_counts(decision: Sequence | pd.Series, label: Sequence | pd.Series) -> Quality:
    """Confusion counts of the fraud class over rows with a non-null label."""
    d = pd.Series(decision).reset_index(drop=True)
    y = pd.Series(label).reset_index(drop=True)
    known = y.notna() & d.notna()
    d = d[known].astype("int64").to_numpy()
    y = y[known].astype("int64").to_numpy()
    return Quality(
        tp=int(((d == 1) & (y == 1)).sum()),
        fp=int(((d == 1) & (y == 0)).sum()),
        fn=int(((d == 0) & (y == 1)).sum()),
        tn=int(((d == 0) & (y == 0)).sum()),
    )


def quality_from_aggregates(agg: pd.DataFrame) -> Quality:
    """Sum the confusion counts of :func:`batch_aggregates` rows."""
    if agg is None or agg.empty:
        return Quality(0, 0, 0, 0)
    return Quality(*(int(agg[c].sum()) for c in ("tp", "fp", "fn", "tn")))


# ----------------------------------------------------------------------------- per-batch aggregates
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
        return _empty_aggregates()
    label = rows["label"]
    known = label.notna()
    y = label.fillna(-1).astype("int64")
    d = rows["decision"].fillna(0).astype("int64")
    frame = pd.DataFrame({
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
    })
    return _group_aggregates(frame)


def merge_aggregates(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    """Combine two aggregate frames (a batch split across reads is summed)."""
    parts = [f for f in (old, new) if f is not None and not f.empty]
    if not parts:
        return _empty_aggregates()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return _group_aggregates(pd.concat(parts, ignore_index=True))


def _group_aggregates(frame: pd.DataFrame) -> pd.DataFrame:
    spec = {"scored_at": "min", **{c: "sum" for c in COUNT_COLUMNS}, EXPECTED_COLUMN: "sum"}
    out = frame.groupby(BATCH_KEY, as_index=False, sort=False).agg(spec)
    return out.sort_values(["scored_at", "batch_id"], kind="stable")[
        [*BATCH_KEY, "scored_at", *COUNT_COLUMNS, EXPECTED_COLUMN]].reset_index(drop=True)


def _empty_aggregates() -> pd.DataFrame:
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


# ----------------------------------------------------------------------------- time intervals
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
        return pd.DataFrame(columns=["transactions", "flagged", "frauds", "labeled", "fraud_rate", "flag_rate",
                                     "expected_fraud_rate"])
    frame = agg.assign(interval_start=agg["scored_at"].dt.floor(delta))
    grouped = frame.groupby("interval_start")[["rows", "flagged", "frauds", "labeled"]].sum()
    expected = frame.groupby("interval_start")[EXPECTED_COLUMN].sum()
    full = pd.date_range(grouped.index.min(), grouped.index.max(), freq=delta, name="interval_start")
    out = grouped.reindex(full, fill_value=0).rename(columns={"rows": "transactions"}).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["fraud_rate"] = (out["frauds"] / out["labeled"]).where(out["labeled"] > 0)
        out["flag_rate"] = (out["flagged"] / out["transactions"]).where(out["transactions"] > 0)
        out["expected_fraud_rate"] = (expected.reindex(full, fill_value=0.0) / out["transactions"]) \
            .where(out["transactions"] > 0)
    return out


# ----------------------------------------------------------------------------- latency and throughput
def latency_over_time(metrics: pd.DataFrame, max_points: int | None = None) -> pd.DataFrame:
    """Per-batch processing time and end-to-end latency percentiles, indexed by commit time.

    With ``max_points``, at most that many rows: consecutive batches are grouped into equal
    runs and each run shows its largest values (spikes stay visible), so a chart of a stream
    that has run for days sends the browser a bounded series (make soak: Chromium grew
    1.7 -> 3.5 GB in an hour while every batch was plotted).
    """
    cols = ["batch_id", "rows", "processing_ms", *LATENCY_PERCENTILE_COLUMNS]
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=cols)
    ordered = metrics.sort_values(["committed_at", "batch_id"])
    if max_points and len(ordered) > max_points:
        run = np.arange(len(ordered)) * max_points // len(ordered)
        grouped = ordered.groupby(run)
        ordered = grouped[["committed_at", "batch_id", *cols[2:]]].max().assign(rows=grouped["rows"].sum().to_numpy())
    return ordered.set_index("committed_at")[cols]


def throughput(metrics: pd.DataFrame) -> dict[str, float]:
    """Measured throughput from ``batch_metrics`` rows (not derived from latency).

    * ``wall_rows_per_s``: rows / (last commit - first batch start), the rate the
      stream actually sustained over the period, idle gaps included;
    * ``processing_rows_per_s``: rows / summed batch processing time, the rate
      while a batch is being processed;
    * ``rows``, ``batches``, ``span_s`` (the wall period in seconds).
    """
    if metrics is None or metrics.empty:
        return {"rows": 0, "batches": 0, "span_s": math.nan, "wall_rows_per_s": math.nan,
                "processing_rows_per_s": math.nan}
    rows = float(metrics["rows"].sum())
    span_s = (metrics["committed_at"].max() - metrics["started_at"].min()).total_seconds()
    busy_s = float(metrics["processing_ms"].sum()) / 1000.0
    return {
        "rows": int(rows),
        "batches": int(len(metrics)),
        "span_s": span_s,
        "wall_rows_per_s": rows / span_s if span_s > 0 else math.nan,
        "processing_rows_per_s": rows / busy_s if busy_s > 0 else math.nan,
    }


def latency_bin_labels(edges: Sequence[float] = LATENCY_EDGES_MS) -> list[str]:
    """Readable labels of the latency histogram bins."""
    def fmt(ms: float) -> str:
        if ms >= 60_000:
            return f"{ms / 60_000:g} min"
        if ms >= 1_000:
            return f"{ms / 1_000:g} s"
        return f"{ms:g} ms"

    labels = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        labels.append(f">= {fmt(lo)}" if math.isinf(hi) else f"{fmt(lo)} - {fmt(hi)}")
    return labels


def latency_histogram(latency_ms: Iterable[float], edges: Sequence[float] = LATENCY_EDGES_MS) -> np.ndarray:
    """Counts of latencies per bin ``[edges[i], edges[i+1])``; negatives (clock skew) count in bin 0."""
    values = np.clip(np.asarray(list(latency_ms) if not isinstance(latency_ms, (np.ndarray, pd.Series))
                                else latency_ms, dtype="float64"), 0, None)
    values = values[~np.isnan(values)]
    idx = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="right") - 1
    idx = np.clip(idx, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype("int64")


def row_latency_ms(kafka_timestamp: pd.Series, committed_at: pd.Series) -> pd.Series:
    """End-to-end latency per row: Kafka message timestamp -> predictions commit, in ms."""
    return (committed_at - kafka_timestamp).dt.total_seconds() * 1000.0


# ----------------------------------------------------------------------------- score distribution
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
            rows.append({"bin_start": edges[i], "bin": f"{edges[i]:.2f}-{edges[i + 1]:.2f}", "class": name,
                         "count": int(n), "share": (n / total) if total else 0.0})
    frame = pd.DataFrame(rows)
    present = [name for name, row in zip(("legit (0)", "fraud (1)", "unlabeled"), counts) if row.sum() > 0]
    return frame[frame["class"].isin(present)].reset_index(drop=True)


# ----------------------------------------------------------------------------- PSI
def psi_edges(reference: Iterable[float], bins: int) -> np.ndarray:
    """Quantile bin edges of the reference (duplicates merged), open at both ends."""
    ref = np.asarray(pd.to_numeric(pd.Series(reference), errors="coerce").dropna(), dtype="float64")
    if ref.size == 0:
        raise ValueError("PSI reference is empty")
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, int(bins) + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def bin_shares(values: Iterable[float], edges: np.ndarray) -> np.ndarray:
    """Share of values per ``[edges[i], edges[i+1])`` bin (NaN ignored)."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype="float64")
    if v.size == 0:
        return np.full(len(edges) - 1, np.nan)
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1) / v.size


def psi(reference: Iterable[float], actual: Iterable[float], bins: int = 10,
        edges: np.ndarray | None = None) -> float:
    """Population stability index of ``actual`` against ``reference``.

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over the reference's quantile bins, with
    empty-bin shares floored at 1e-4. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate
    shift, > 0.2 significant shift. NaN if ``actual`` is empty.
    """
    if edges is None:
        edges = psi_edges(reference, bins)
    e = bin_shares(reference, edges)
    a = bin_shares(actual, edges)
    if np.isnan(a).any() or np.isnan(e).any():
        return math.nan
    e = np.clip(e, PSI_EPS, None)
    a = np.clip(a, PSI_EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


# ----------------------------------------------------------------------------- drift table views

def drift_latest_window(drift: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Drift rows of the newest window per feature (and model version), with an ``alert`` column."""
    if drift is None or drift.empty:
        return pd.DataFrame(columns=["feature", "model_version", "psi", "rows", "alert"])
    newest = drift[drift["window_start"] == drift["window_start"].max()]
    out = newest.sort_values(["feature", "model_version"], na_position="first")[
        ["window_start", "feature", "model_version", "psi", "rows", "reference"]].reset_index(drop=True)
    out["alert"] = np.where(out["psi"] > threshold, "PSI above threshold", "ok")
    return out


def drift_over_time(drift: pd.DataFrame) -> pd.DataFrame:
    """Wide frame for charts: index window_start, one column per feature / ``probability (vN)``."""
    if drift is None or drift.empty:
        return pd.DataFrame()
    series = np.where(drift["model_version"].isna(), drift["feature"],
                      drift["feature"] + " (v" + drift["model_version"].astype(str) + ")")
    return drift.assign(series=series).pivot_table(index="window_start", columns="series", values="psi",
                                                   aggfunc="mean").sort_index()


# ----------------------------------------------------------------------------- alerts
def latest_alerts(flagged: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` most recent flagged rows (newest batch first, then highest probability)."""
    if flagged is None or flagged.empty:
        return flagged
    ordered = flagged.sort_values(["scored_at", "batch_id", "probability"], ascending=[False, False, False],
                                  kind="stable")
    return ordered.head(int(n)).reset_index(drop=True)


# ----------------------------------------------------------------------------- Delta reading
@dataclass
class DeltaUpdate:
    """Result of :meth:`DeltaIncremental.poll`.

    ``exists``: the table exists; ``version``: its current version (None if absent);
    ``new``: rows of the files added since the last poll (None when nothing changed);
    ``reset``: files were removed (overwrite/compaction), so ``new`` holds the whole
    table and previously accumulated state must be dropped.
    """

    exists: bool
    version: int | None
    new: pa.Table | None = None
    reset: bool = False

    @property
    def changed(self) -> bool:
        return self.new is not None or self.reset


def table_version(path: str) -> int | None:
    """Current version of the Delta table at ``path``, or None when there is none."""
    from deltalake import DeltaTable

    try:
        if not DeltaTable.is_deltatable(path):
            return None
        return int(DeltaTable(path).version())
    except Exception:  # noqa: BLE001 - a half-written or vanished table reads as absent
        return None


def read_columns(path: str, columns: Sequence[str] | None = None, filter: pds.Expression | None = None,
                 version: int | None = None) -> pd.DataFrame:
    """Read a Delta table (optionally at ``version``) projected to ``columns`` and filtered, as pandas.

    Missing columns come back as nulls, so readers tolerate older table schemas.
    """
    from deltalake import DeltaTable

    dt = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    ds = dt.to_pyarrow_dataset()
    return _project(ds, columns, filter).to_pandas()


def _project(ds: pds.Dataset, columns: Sequence[str] | None, filter: pds.Expression | None = None) -> pa.Table:
    names = set(ds.schema.names)
    wanted = list(columns) if columns is not None else list(ds.schema.names)
    present = [c for c in wanted if c in names]
    table = ds.to_table(columns=present, filter=filter)
    for c in wanted:
        if c not in names:
            table = table.append_column(c, pa.nulls(table.num_rows))
    return table.select(wanted)


class DeltaIncremental:
    """Read a growing Delta table incrementally, one poll per dashboard tick.

    Each :meth:`poll` refreshes the log (``update_incremental``); if the version is
    unchanged it returns at once. Otherwise it replays the commits since the last poll
    from ``_delta_log``: files added with ``dataChange`` are read (projected to
    ``columns``), even when a later commit already compacted them away; files added by
    a compaction (``dataChange: false``, OPTIMIZE) hold rows already read, so they are
    only noted. A delete, an overwrite, a recreated table or a commit whose log file is
    gone re-reads everything and sets ``reset``.
    """

    def __init__(self, path: str, columns: Sequence[str] | None = None) -> None:
        self.path = path
        self.columns = list(columns) if columns is not None else None
        self.version: int | None = None
        self._dt = None
        self._seen: set[str] = set()
        self.files_read = 0  # data files read so far (for tests and logs)

    def poll(self) -> DeltaUpdate:
        """Read what changed since the last poll (see :class:`DeltaUpdate`)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            if self._dt is None:
                if not DeltaTable.is_deltatable(self.path):
                    return DeltaUpdate(exists=False, version=None)
                self._dt = DeltaTable(self.path)
            else:
                self._dt.update_incremental()
            version = int(self._dt.version())
        except (TableNotFoundError, FileNotFoundError) as exc:  # deleted, or being recreated, between two polls
            log.info("Delta table %s not readable (%s); will retry", self.path, str(exc).splitlines()[0][:120])
            had_state = bool(self._seen)
            self._forget()
            return DeltaUpdate(exists=False, version=None, reset=had_state)
        if version == self.version:
            return DeltaUpdate(exists=True, version=version)
        ds = self._dt.to_pyarrow_dataset()
        current = {f.path for f in ds.get_fragments()}
        plan = self._replay(ds.filesystem, version) if self.version is not None and version > self.version else None
        if plan is not None and plan[1] == current:
            read, self._seen = plan
        else:
            if self.version is not None:
                log.info("Delta table %s: rows removed or log gone before version %s, re-reading it", self.path, version)
            read, self._seen = sorted(current), set(current)
        subset = pds.FileSystemDataset.from_paths(read, schema=ds.schema, format=ds.format, filesystem=ds.filesystem)
        table = _project(subset, self.columns)
        self.files_read += len(read)
        reset = plan is None and self.version is not None
        self.version = version
        return DeltaUpdate(exists=True, version=version, new=table, reset=reset)

    def _replay(self, filesystem, version: int) -> tuple[list[str], set[str]] | None:
        """(files to read, files of the new version) from the commits since the last poll; None: re-read all."""
        seen, read = set(self._seen), []
        for v in range(self.version + 1, version + 1):
            try:
                with filesystem.open_input_stream(f"_delta_log/{v:020d}.json") as stream:
                    lines = stream.read().decode("utf-8").splitlines()
            except FileNotFoundError:
                return None  # the log was cleaned up past a checkpoint: the files in between are unknown
            for action in (json.loads(line) for line in lines if line.strip()):
                if "add" in action:
                    path = unquote(action["add"]["path"])
                    if action["add"].get("dataChange", True):
                        read.append(path)
                    seen.add(path)
                elif "remove" in action:
                    if action["remove"].get("dataChange", True):
                        return None  # rows deleted or overwritten
                    seen.discard(unquote(action["remove"]["path"]))
        return read, seen

    def _forget(self) -> None:
        self._dt, self._seen, self.version = None, set(), None


class VersionedTable:
    """A small Delta table kept fully in memory, refreshed incrementally; None if absent."""

    def __init__(self, path: str, columns: Sequence[str] | None = None) -> None:
        self._reader = DeltaIncremental(path, columns)
        self.frame: pd.DataFrame | None = None

    @property
    def version(self) -> int | None:
        return self._reader.version

    def refresh(self) -> bool:
        """Apply the latest changes; True if the frame changed."""
        update = self._reader.poll()
        if not update.exists:
            changed = self.frame is not None
            self.frame = None
            return changed
        if not update.changed:
            return False
        new = update.new.to_pandas() if update.new is not None else None
        if update.reset or self.frame is None:
            self.frame = new
        elif new is not None and len(new):
            self.frame = pd.concat([self.frame, new], ignore_index=True)
        return True


# ----------------------------------------------------------------------------- live monitor
@dataclass
class Snapshot:
    """Everything the dashboard draws, as of one refresh (treat as read-only)."""

    predictions_version: int | None
    metrics_version: int | None
    drift_version: int | None
    aggregates: pd.DataFrame
    metrics: pd.DataFrame | None
    flagged: pd.DataFrame
    score_counts: np.ndarray
    latency_counts: np.ndarray
    drift: pd.DataFrame | None
    files_read: int = 0

    @property
    def has_predictions(self) -> bool:
        return self.aggregates is not None and int(self.aggregates["rows"].sum()) > 0


@dataclass
class LiveMonitor:
    """Incremental state of the ``predictions``, ``batch_metrics`` and ``drift`` tables.

    Thread-safe: Streamlit sessions share one instance per set of table paths.
    """

    predictions_path: str
    metrics_path: str
    drift_path: str
    amount_column: str = "Amount"
    score_bins: int = 20
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        cols = list(dict.fromkeys([*CORE_COLUMNS, *ALERT_COLUMNS, self.amount_column]))
        self._predictions = DeltaIncremental(self.predictions_path, cols)
        self._metrics = VersionedTable(self.metrics_path, METRICS_COLUMNS)
        self._drift = VersionedTable(self.drift_path)
        self._clear()

    def _clear(self) -> None:
        self._agg = _empty_aggregates()
        self._flagged = pd.DataFrame()
        self._scores = np.zeros((3, self.score_bins), dtype="int64")
        self._latency = np.zeros(len(LATENCY_EDGES_MS) - 1, dtype="int64")
        self._pending = pd.DataFrame({"query_id": pd.Series(dtype=object), "batch_id": pd.Series(dtype="int64"),
                                      "kafka_timestamp": pd.Series(dtype="datetime64[us, UTC]")})

    def refresh(self) -> Snapshot:
        """Poll the three tables, fold new rows into the aggregates, return a snapshot."""
        with self._lock:
            update = self._predictions.poll()
            if update.reset or not update.exists:
                if update.reset or self._agg["rows"].sum() > 0:
                    self._clear()
            if update.new is not None and update.new.num_rows:
                self._ingest(update.new.to_pandas())
            self._metrics.refresh()
            self._resolve_latency()
            self._drift.refresh()
            return Snapshot(
                predictions_version=self._predictions.version,
                metrics_version=self._metrics.version,
                drift_version=self._drift.version,
                aggregates=self._agg,
                metrics=self._metrics_frame(),
                flagged=self._flagged,
                score_counts=self._scores.copy(),
                latency_counts=self._latency.copy(),
                drift=self._drift.frame,
                files_read=self._predictions.files_read,
            )

    def _ingest(self, rows: pd.DataFrame) -> None:
        self._agg = merge_aggregates(self._agg, batch_aggregates(rows))
        self._scores += score_counts(rows["probability"], rows["label"], self.score_bins)
        flagged = rows.loc[rows["decision"].fillna(0).astype("int64") == 1,
                           ["scored_at", "batch_id", "transaction_id", "probability", self.amount_column,
                            "label", "model_version", "reasons", "source"]]
        if len(flagged):
            both = pd.concat([self._flagged, flagged], ignore_index=True) if len(self._flagged) else flagged
            self._flagged = latest_alerts(both, MAX_FLAGGED_KEPT)
        pending = rows[["batch_id", "kafka_timestamp"]].assign(query_id=query_ids(rows)).dropna()
        self._pending = pd.concat([self._pending, pending], ignore_index=True) if len(self._pending) else pending
        if len(self._pending) > MAX_PENDING_LATENCY_ROWS:
            log.warning("%d rows wait for their batch_metrics row; dropping the oldest", len(self._pending))
            self._pending = self._pending.tail(MAX_PENDING_LATENCY_ROWS)

    def _metrics_frame(self) -> pd.DataFrame | None:
        frame = self._metrics.frame
        if frame is None:
            return None
        frame = frame.assign(query_id=query_ids(frame))
        return frame.drop_duplicates(BATCH_KEY, keep="last").sort_values(["started_at", "batch_id"]).reset_index(drop=True)

    def _resolve_latency(self) -> None:
        """Histogram the end-to-end latency of rows whose batch now has its commit time."""
        metrics = self._metrics.frame
        if metrics is None or self._pending.empty:
            return
        committed = commit_times(self._pending, metrics)
        known = committed.notna()
        if not known.any():
            return
        done = self._pending[known]
        latency = row_latency_ms(done["kafka_timestamp"], committed[known])
        self._latency += latency_histogram(latency.to_numpy())
        self._pending = self._pending[~known]


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DashboardSettings:
    """The ``dashboard.*`` config keys plus the table locations the dashboard reads."""

    predictions_path: str
    metrics_path: str
    drift_path: str
    refresh_seconds: float = 5.0
    recent_window_minutes: float = 5.0
    fraud_rate_interval: str = "1min"
    alert_rows: int = 20
    score_bins: int = 20
    psi_warning: float = 0.2
    production_fraud_rate: float = 0.00172
    chart_points: int = 600

    @classmethod
    def from_config(cls, cfg: "Config") -> "DashboardSettings":
        """Read ``dashboard.*`` (missing keys take the defaults above) and validate them."""
        settings = cls(
            predictions_path=cfg.table_path("predictions"),
            metrics_path=cfg.table_path("batch_metrics"),
            drift_path=cfg.table_path("drift"),
            refresh_seconds=float(cfg.get("dashboard.refresh_seconds", 5.0)),
            recent_window_minutes=float(cfg.get("dashboard.recent_window_minutes", 5.0)),
            fraud_rate_interval=str(cfg.get("dashboard.fraud_rate_interval", "1min")),
            alert_rows=int(cfg.get("dashboard.alert_rows", 20)),
            score_bins=int(cfg.get("dashboard.score_bins", 20)),
            psi_warning=float(cfg.get("dashboard.psi_warning", 0.2)),
            production_fraud_rate=float(cfg.get("train.production_fraud_rate")),
            chart_points=int(cfg.get("dashboard.chart_points")),
        )
        parse_interval(settings.fraud_rate_interval)
        if settings.score_bins < 1 or settings.alert_rows < 1 or settings.recent_window_minutes <= 0:
            raise ConfigError("dashboard.score_bins, dashboard.alert_rows and dashboard.recent_window_minutes "
                              "must be positive")
        return settings
