"""The dashboard's live view: :class:`LiveMonitor` keeps *aggregates* of the ``predictions``
table (one row per micro-batch, histogram counts, the flagged rows) rather than the rows
themselves, so memory and per-tick work stay small as the table grows; and the dashboard's
settings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraud_ml.errors import ConfigError
from fraud_ml.io.delta_reader import DeltaIncremental, VersionedTable
from fraud_ml.monitoring.latency import (
    LATENCY_EDGES_MS,
    latency_histogram,
    row_latency_ms,
)
from fraud_ml.monitoring.quality import (
    BATCH_KEY,
    batch_aggregates,
    commit_times,
    empty_aggregates,
    latest_alerts,
    merge_aggregates,
    parse_interval,
    query_ids,
    score_counts,
)

if TYPE_CHECKING:
    from fraud_ml.config import Config

log = logging.getLogger(__name__)

# Columns of ``predictions`` the live monitor reads (plus the amount column, see LiveMonitor).
CORE_COLUMNS: list[str] = ["query_id", "batch_id", "scored_at", "probability", "decision", "label", "kafka_timestamp"]
ALERT_COLUMNS: list[str] = ["transaction_id", "model_version", "reasons", "source"]
METRICS_COLUMNS: list[str] = [
    "query_id",
    "batch_id",
    "model_version",
    "started_at",
    "committed_at",
    "rows",
    "quarantined",
    "flagged",
    "processing_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "rows_per_s",
]
MAX_FLAGGED_KEPT = 5_000  # newest flagged rows kept for the alerts table
MAX_PENDING_LATENCY_ROWS = 500_000  # rows waiting for their batch's committed_at


# --- live monitor
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
        self._agg = empty_aggregates()
        self._flagged = pd.DataFrame()
        self._scores = np.zeros((3, self.score_bins), dtype="int64")
        self._latency = np.zeros(len(LATENCY_EDGES_MS) - 1, dtype="int64")
        self._pending = pd.DataFrame(
            {
                "query_id": pd.Series(dtype=object),
                "batch_id": pd.Series(dtype="int64"),
                "kafka_timestamp": pd.Series(dtype="datetime64[us, UTC]"),
            }
        )

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
        flagged = rows.loc[
            rows["decision"].fillna(0).astype("int64") == 1,
            [
                "scored_at",
                "batch_id",
                "transaction_id",
                "probability",
                self.amount_column,
                "label",
                "model_version",
                "reasons",
                "source",
            ],
        ]
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
        return (
            frame.drop_duplicates(BATCH_KEY, keep="last").sort_values(["started_at", "batch_id"]).reset_index(drop=True)
        )

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


# --- settings
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
            refresh_seconds=float(cfg.get("dashboard.refresh_seconds")),
            recent_window_minutes=float(cfg.get("dashboard.recent_window_minutes")),
            fraud_rate_interval=str(cfg.get("dashboard.fraud_rate_interval")),
            alert_rows=int(cfg.get("dashboard.alert_rows")),
            score_bins=int(cfg.get("dashboard.score_bins")),
            psi_warning=float(cfg.get("drift.psi_warning")),
            production_fraud_rate=float(cfg.get("train.production_fraud_rate")),
            chart_points=int(cfg.get("dashboard.chart_points")),
        )
        parse_interval(settings.fraud_rate_interval)
        if settings.score_bins < 1 or settings.alert_rows < 1 or settings.recent_window_minutes <= 0:
            raise ConfigError(
                "dashboard.score_bins, dashboard.alert_rows and dashboard.recent_window_minutes must be positive"
            )
        return settings
