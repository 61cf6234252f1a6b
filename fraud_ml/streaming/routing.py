"""One micro-batch's scored messages -> rows of ``predictions``, ``quarantine`` and ``batch_metrics``.

Pure functions on Arrow tables, run by the streaming driver after the scoring job: no
Spark, so every rule is unit-tested on plain tables. A message lands in exactly one of
``predictions`` and ``quarantine``:

* refused by the decoder: its reason (fraud_ml.streaming.messages); an ``event_time`` too far ahead of
  the batch's pinned start is refused here, so a replay decides as the first attempt did;
* the model returned a non-finite probability: ``model returned NaN``;
* with ``stream.deduplicate``, a valid message whose ``transaction_id`` appeared earlier
  in the batch (lowest Kafka partition, then offset, among *valid* messages, wins) or
  was scored by a batch inside the look-back window: ``duplicate transaction_id: ...``.

Everything a row holds is decided from the batch's content and its :class:`BatchTag`
(start time, look-back bound, model version), so a replayed batch routes identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud_ml.io.delta import BatchTag
from fraud_ml.schema import ID_COL, MESSAGE_LABEL, SOURCE_COL
from fraud_ml.streaming.contract import NATIVE, MessageContract
from fraud_ml.streaming.messages import (
    REASON,
    ValidationLimits,
    event_time_ahead_reason,
    event_time_limit,
)
from fraud_ml.streaming.recent_ids import RecentIds, hash_ids

_TS = pa.timestamp("us", tz="UTC")
LATENCY_QUANTILES = (50, 90, 95, 99)

PREDICTIONS_HEAD = pa.schema(
    [
        pa.field(ID_COL, pa.string()),
        pa.field("probability", pa.float64()),
        pa.field("raw_score", pa.float64()),
        pa.field("decision", pa.int32()),
        pa.field("reasons", pa.string()),
        pa.field("label", pa.int32()),
        pa.field("model_version", pa.string()),
        pa.field(SOURCE_COL, pa.string()),
        pa.field("event_time", _TS),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("kafka_timestamp", _TS),
        pa.field("scored_at", _TS),
        pa.field("batch_id", pa.int64()),
        pa.field("query_id", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("batch_id", pa.int64()),
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("kafka_timestamp", _TS),
        pa.field("key", pa.string()),
        pa.field("raw_value", pa.binary()),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", _TS),
        pa.field("query_id", pa.string()),
    ]
)
BATCH_METRICS_SCHEMA = pa.schema(
    [
        pa.field("batch_id", pa.int64()),
        pa.field("model_version", pa.string()),
        pa.field("started_at", _TS),
        pa.field("committed_at", _TS),
        pa.field("rows", pa.int64()),
        pa.field("quarantined", pa.int64()),
        pa.field("flagged", pa.int64()),
        pa.field("processing_ms", pa.float64()),
        *[pa.field(f"latency_p{q}_ms", pa.float64()) for q in LATENCY_QUANTILES],
        pa.field("latency_max_ms", pa.float64()),
        pa.field("rows_per_s", pa.float64()),
        pa.field("kafka_ts_min", _TS),
        pa.field("kafka_ts_max", _TS),
        pa.field("query_id", pa.string()),
        # Where the batch's time went (ms): the Spark job (Kafka read, decode, score, collect), the
        # routing on the driver, the predictions and quarantine commits; and the look-back's size.
        pa.field("score_ms", pa.float64()),
        pa.field("route_ms", pa.float64()),
        pa.field("write_ms", pa.float64()),
        pa.field("lookback_ids", pa.int64()),
    ]
)
NAN_REASON = "model returned NaN"
WITHIN_BATCH = "duplicate transaction_id: repeated within the batch"
ALREADY_SCORED = "duplicate transaction_id: already scored in batch "


def predictions_schema(keep_features: list[str]) -> pa.Schema:
    """``predictions`` columns: the head above, then the kept feature values."""
    return pa.schema(list(PREDICTIONS_HEAD) + [pa.field(c, pa.float64()) for c in keep_features])


def key_text(raw: bytes | None) -> str | None:
    """A Kafka key as text; bytes that are not UTF-8 are kept as backslash escapes."""
    return None if raw is None else bytes(raw).decode("utf-8", "backslashreplace")


@dataclass
class RoutedBatch:
    """What one batch writes, before the commit times are known."""

    predictions: pa.Table
    quarantine: pa.Table
    duplicates_without_raw: pa.Table  # (kafka_partition, kafka_offset) of duplicates: raw bytes to fetch
    scored_hashes: np.ndarray  # hashes of the ids written to predictions (for RecentIds)

    @property
    def empty(self) -> bool:
        return self.predictions.num_rows == 0 and self.quarantine.num_rows == 0


def route_batch(
    scored: pa.Table,
    tag: BatchTag,
    keep_features: list[str],
    deduplicate: bool,
    recent: RecentIds | None,
    limits: ValidationLimits,
    contract: MessageContract = NATIVE,
) -> RoutedBatch:
    """Split scored messages (``fraud_ml.streaming.scoring.scored_schema``) into table rows."""
    n = scored.num_rows
    reason = np.full(n, None, dtype=object)
    valid = pc.is_null(scored[REASON]).to_numpy(zero_copy_only=False)
    refused_early = np.flatnonzero(~valid)
    reason[refused_early] = scored[REASON].take(pa.array(refused_early, pa.int64())).to_pylist()
    event_ms = scored["event_time_ms"].to_numpy(zero_copy_only=False).astype(np.float64)
    late = valid & (event_ms > event_time_limit(limits, tag.started_at_ms))  # NaN (no event_time) compares False
    reason[late] = event_time_ahead_reason(limits, contract)
    valid &= ~late
    probability = scored["probability"].to_numpy(zero_copy_only=False).astype(np.float64)
    non_finite = valid & ~np.isfinite(probability)
    reason[non_finite] = NAN_REASON
    valid &= ~non_finite
    duplicate = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(valid)
    hashes = _hashes(scored, rows)
    if deduplicate and rows.size:
        repeated = _repeated_in_batch(scored, rows, hashes)
        reason[rows[repeated]] = WITHIN_BATCH
        duplicate[rows[repeated]] = True
        rows, hashes = rows[~repeated], hashes[~repeated]
        if recent is not None and tag.since_ms is not None:
            seen = recent.seen_in(hashes, tag.since_ms)
            again = seen >= 0
            reason[rows[again]] = [ALREADY_SCORED + str(b) for b in seen[again]]
            duplicate[rows[again]] = True
            rows, hashes = rows[~again], hashes[~again]
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    predictions = _prediction_rows(scored.filter(pa.array(valid)), tag, keep_features)
    refused = ~valid
    quarantine = _quarantine_rows(scored.filter(pa.array(refused)), reason[refused], tag)
    dup_rows = scored.filter(pa.array(duplicate)).select(["kafka_partition", "kafka_offset"])
    return RoutedBatch(predictions, quarantine, dup_rows, hashes)


def _hashes(scored: pa.Table, rows: np.ndarray) -> np.ndarray:
    """uint64 id hashes of ``rows``: the workers' ``id_hash`` column, or computed here when absent (spark_udf)."""
    if "id_hash" in scored.column_names:
        return scored["id_hash"].take(pa.array(rows, pa.int64())).to_numpy().view(np.uint64)
    return hash_ids(scored[ID_COL].take(pa.array(rows, pa.int64())).to_numpy(zero_copy_only=False))


def _repeated_in_batch(scored: pa.Table, rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Which of ``rows`` repeat an id seen earlier in the batch (lowest partition, then offset, first).

    Candidates are found by hash; the few that share one are then compared by their id text,
    so two different ids never count as repeats of each other.
    """
    candidates = np.flatnonzero(pd.Series(hashes).duplicated(keep=False).to_numpy())
    repeated = np.zeros(len(rows), dtype=bool)
    if candidates.size:
        take = pa.array(rows[candidates], pa.int64())
        frame = pd.DataFrame(
            {
                "id": scored[ID_COL].take(take).to_pylist(),
                "at": candidates,
                "p": scored["kafka_partition"].take(take).to_numpy(),
                "o": scored["kafka_offset"].take(take).to_numpy(),
            }
        ).sort_values(["p", "o"], kind="stable")
        repeated[frame.loc[frame["id"].duplicated(keep="first"), "at"].to_numpy()] = True
    return repeated


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    """``n`` copies of ``value`` (built as a one-entry dictionary, then decoded: no n-element Python list)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], type_)).cast(type_)


def _prediction_rows(valid: pa.Table, tag: BatchTag, keep_features: list[str]) -> pa.Table:
    n = valid.num_rows
    columns = {
        ID_COL: valid[ID_COL],
        "probability": valid["probability"],
        "raw_score": valid["raw_score"],
        "decision": valid["decision"],
        "reasons": valid["reasons"],
        "label": valid[MESSAGE_LABEL],
        "model_version": _constant(str(tag.model_version), n, pa.string()),
        SOURCE_COL: valid[SOURCE_COL],
        "event_time": pc.multiply(valid["event_time_ms"], 1000).cast(pa.int64()).cast(_TS),
        "kafka_partition": valid["kafka_partition"],
        "kafka_offset": valid["kafka_offset"],
        "kafka_timestamp": valid["kafka_timestamp"].cast(_TS),
        "scored_at": pa.array(np.full(n, tag.started_at_ms * 1000, np.int64)).cast(_TS),
        "batch_id": pa.array(np.full(n, tag.batch, np.int64)),
        "query_id": _constant(tag.query_id, n, pa.string()),
        **{c: valid[c] for c in keep_features},
    }
    return pa.table(columns).cast(predictions_schema(keep_features))


def _quarantine_rows(refused: pa.Table, reasons: np.ndarray, tag: BatchTag) -> pa.Table:
    n = refused.num_rows
    keys = [key_text(k) for k in refused["key"].to_pylist()]
    return pa.table(
        {
            "batch_id": pa.array([tag.batch] * n, pa.int64()),
            "kafka_topic": refused["kafka_topic"],
            "kafka_partition": refused["kafka_partition"],
            "kafka_offset": refused["kafka_offset"],
            "kafka_timestamp": refused["kafka_timestamp"].cast(_TS),
            "key": pa.array(keys, pa.string()),
            "raw_value": refused["raw_value"],
            "reason": pa.array(list(reasons), pa.string()),
            "quarantined_at": pa.array([tag.started_at_ms * 1000] * n, pa.int64()).cast(_TS),
            "query_id": pa.array([tag.query_id] * n, pa.string()),
        }
    ).cast(QUARANTINE_SCHEMA)


def with_raw(quarantine: pa.Table, raw: pa.Table) -> pa.Table:
    """Fill topic, key and raw bytes of quarantined duplicates from ``raw`` (partition, offset, topic, key, value)."""
    if raw.num_rows == 0:
        return quarantine
    lookup = {
        (p, o): (t, k, v)
        for p, o, t, k, v in zip(*(raw[c].to_pylist() for c in ("partition", "offset", "topic", "key", "value")))
    }
    topic, key, value = [], [], []
    for p, o, t, k, v in zip(
        *(quarantine[c].to_pylist() for c in ("kafka_partition", "kafka_offset", "kafka_topic", "key", "raw_value"))
    ):
        found = lookup.get((p, o)) if v is None else None
        topic.append(found[0] if found else t)
        key.append(key_text(found[1]) if found else k)
        value.append(found[2] if found else v)
    return (
        quarantine.set_column(
            quarantine.schema.get_field_index("kafka_topic"), "kafka_topic", pa.array(topic, pa.string())
        )
        .set_column(quarantine.schema.get_field_index("key"), "key", pa.array(key, pa.string()))
        .set_column(quarantine.schema.get_field_index("raw_value"), "raw_value", pa.array(value, pa.binary()))
    )


def metrics_row(routed: RoutedBatch, tag: BatchTag, committed_ms: int, stages: dict | None = None) -> pa.Table:
    """The one ``batch_metrics`` row: counts, batch time and Kafka-timestamp -> commit latency quantiles.

    ``stages``: optional ``score_ms``, ``route_ms``, ``write_ms`` and ``lookback_ids`` of this attempt.
    """
    preds = routed.predictions
    rows, quarantined = preds.num_rows, routed.quarantine.num_rows
    flagged = int(pc.sum(preds["decision"]).as_py() or 0) if rows else 0
    processing_ms = float(committed_ms - tag.started_at_ms)
    ts_ms = preds["kafka_timestamp"].cast(pa.int64()).to_numpy() / 1000.0 if rows else np.empty(0)
    latency = committed_ms - ts_ms
    quantiles = [float(np.percentile(latency, q)) for q in LATENCY_QUANTILES] if rows else [None] * 4

    def at(ms: float | None) -> datetime | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000.0, timezone.utc)

    return pa.Table.from_pylist(
        [
            {
                "batch_id": tag.batch,
                "model_version": str(tag.model_version),
                "started_at": at(tag.started_at_ms),
                "committed_at": at(committed_ms),
                "rows": rows,
                "quarantined": quarantined,
                "flagged": flagged,
                "processing_ms": processing_ms,
                **{f"latency_p{q}_ms": v for q, v in zip(LATENCY_QUANTILES, quantiles)},
                "latency_max_ms": float(latency.max()) if rows else None,
                "rows_per_s": rows / (processing_ms / 1000.0) if processing_ms > 0 else None,
                "kafka_ts_min": at(float(ts_ms.min())) if rows else None,
                "kafka_ts_max": at(float(ts_ms.max())) if rows else None,
                "query_id": tag.query_id,
                **(stages or {}),
            }
        ],
        schema=BATCH_METRICS_SCHEMA,
    )
