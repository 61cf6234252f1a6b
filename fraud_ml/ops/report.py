"""Run summary from the Delta tables: volume, quality against replayed labels, latency, throughput."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_ml.monitoring.quality import batch_index, commit_times


@dataclass
class RunSummary:
    """Headline numbers of a streaming run."""

    rows: int
    distinct_ids: int
    flagged: int
    actual_frauds: int
    precision: float
    recall: float
    f1: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    throughput_tps: float
    batches: int
    quarantined: int

    def lines(self) -> list[str]:
        return [
            f"rows scored        {self.rows:,} ({self.distinct_ids:,} distinct ids, {self.quarantined:,} quarantined)",
            f"frauds flagged     {self.flagged:,} (actual frauds in the replay: {self.actual_frauds:,})",
            f"quality vs labels  precision {self.precision:.3f}  recall {self.recall:.3f}  F1 {self.f1:.3f}",
            f"latency (Kafka ts -> Delta commit)  p50 {self.latency_p50_ms:,.0f} ms  "
            f"p95 {self.latency_p95_ms:,.0f} ms  p99 {self.latency_p99_ms:,.0f} ms",
            f"throughput         {self.throughput_tps:,.0f} tx/s over {self.batches} micro-batches",
        ]


def row_latencies_ms(predictions: pd.DataFrame, batch_metrics: pd.DataFrame) -> np.ndarray:
    """Per-row end-to-end latency: the batch's Delta commit time minus the Kafka timestamp."""
    commit_ts = commit_times(predictions, batch_metrics)
    delta = pd.to_datetime(commit_ts, utc=True) - pd.to_datetime(predictions["kafka_timestamp"], utc=True)
    return (delta.dt.total_seconds() * 1000.0).dropna().to_numpy()


def summarize(
    predictions: pd.DataFrame,
    batch_metrics: pd.DataFrame,
    quarantined: int = 0,
    latency_from: pd.Timestamp | None = None,
) -> RunSummary:
    """Summary of ``predictions`` (transaction_id, decision, label, batch_id, kafka_timestamp)
    and ``batch_metrics`` (batch_id, started_at, committed_at, rows).

    Latency percentiles cover the rows sent at or after ``latency_from`` (all rows when None).
    """
    labelled = predictions.dropna(subset=["label"])
    y, pred = labelled["label"].astype(int).to_numpy(), labelled["decision"].astype(int).to_numpy()
    tp = int(((y == 1) & (pred == 1)).sum())
    fp = int(((y == 0) & (pred == 1)).sum())
    fn = int(((y == 1) & (pred == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    timed = (
        predictions
        if latency_from is None
        else predictions[pd.to_datetime(predictions["kafka_timestamp"], utc=True) >= latency_from]
    )
    latencies = row_latencies_ms(timed, batch_metrics) if len(batch_metrics) and len(timed) else np.array([])
    pct = (lambda q: float(np.percentile(latencies, q))) if latencies.size else (lambda q: float("nan"))
    if len(batch_metrics):
        span = (
            pd.to_datetime(batch_metrics["committed_at"], utc=True).max()
            - pd.to_datetime(batch_metrics["started_at"], utc=True).min()
        ).total_seconds()
    else:
        span = 0.0
    return RunSummary(
        rows=len(predictions),
        distinct_ids=int(predictions["transaction_id"].nunique()),
        flagged=int(predictions["decision"].sum()),
        actual_frauds=int((y == 1).sum()),
        precision=precision,
        recall=recall,
        f1=f1,
        latency_p50_ms=pct(50),
        latency_p95_ms=pct(95),
        latency_p99_ms=pct(99),
        throughput_tps=len(predictions) / span if span > 0 else float("nan"),
        batches=int(batch_index(batch_metrics).nunique()) if len(batch_metrics) else 0,
        quarantined=quarantined,
    )
