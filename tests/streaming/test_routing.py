"""fraud_ml.streaming.routing: scored messages -> predictions / quarantine / batch_metrics rows.

Plain Arrow, no Spark.
"""

import numpy as np
import pyarrow as pa

from fraud_ml.config import load_config
from fraud_ml.io.delta import BatchTag
from fraud_ml.streaming.messages import ValidationLimits
from fraud_ml.streaming.recent_ids import RecentIds, hash_ids
from fraud_ml.streaming.routing import (
    ALREADY_SCORED,
    NAN_REASON,
    QUARANTINE_SCHEMA,
    WITHIN_BATCH,
    metrics_row,
    predictions_schema,
    route_batch,
    with_raw,
)
from fraud_ml.streaming.scoring import scored_schema

KEEP = ["Amount"]
LIMITS = ValidationLimits.from_config(load_config(env={}))
TAG = BatchTag("app", "query-1", 7, started_at_ms=1_790_000_000_000, since_ms=1_789_990_000_000, model_version="3")


def scored(rows: list[dict]) -> pa.Table:
    """A scored batch: each row names id, reason, partition, offset and optionally probability."""
    full = []
    for r in rows:
        valid = r.get("reason") is None
        full.append(
            {
                "reason": r.get("reason"),
                "transaction_id": r["id"] if valid else None,
                "probability": r.get("probability", 0.9 if r.get("flag") else 0.1) if valid else None,
                "raw_score": r.get("probability", 0.9 if r.get("flag") else 0.1) if valid else None,
                "decision": (1 if r.get("flag") else 0) if valid else None,
                "reasons": "V14 (+1.00)" if r.get("flag") else None,
                "label": 1 if r.get("flag") else 0,
                "source": "real",
                "event_time_ms": TAG.started_at_ms - 10 if valid else None,
                "kafka_partition": r["p"],
                "kafka_offset": r["o"],
                "kafka_timestamp": (TAG.started_at_ms - 500) * 1000,
                "kafka_topic": None if valid else "tx",
                "key": None if valid else b"k",
                "raw_value": None if valid else b"{bad",
                "Amount": 5.0 if valid else None,
                "id_hash": int(hash_ids([r["id"]])[0].astype(np.int64)) if valid else None,  # the workers' hash
            }
        )
    return pa.Table.from_pylist(full, schema=scored_schema(KEEP))


def keys(table: pa.Table) -> list[tuple]:
    return list(zip(table["kafka_partition"].to_pylist(), table["kafka_offset"].to_pylist()))


def test_valid_rows_go_to_predictions_with_the_tag_values():
    batch = scored(
        [
            {"id": "b", "p": 1, "o": 3},
            {"id": "a", "p": 0, "o": 9, "flag": True},
            {"id": None, "reason": "invalid JSON", "p": 0, "o": 4},
        ]
    )
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    assert routed.predictions.schema == predictions_schema(KEEP) and routed.quarantine.schema == QUARANTINE_SCHEMA
    assert sorted(keys(routed.predictions)) == [(0, 9), (1, 3)]
    row = next(r for r in routed.predictions.to_pylist() if r["transaction_id"] == "a")
    assert row["transaction_id"] == "a" and row["decision"] == 1 and row["model_version"] == "3"
    assert row["batch_id"] == 7 and int(row["scored_at"].timestamp() * 1000) == TAG.started_at_ms
    assert int(row["event_time"].timestamp() * 1000) == TAG.started_at_ms - 10
    q = routed.quarantine.to_pylist()
    assert [(r["reason"], r["raw_value"], r["key"], r["kafka_topic"]) for r in q] == [
        ("invalid JSON", b"{bad", "k", "tx")
    ]
    assert int(q[0]["quarantined_at"].timestamp() * 1000) == TAG.started_at_ms


def test_an_invalid_copy_does_not_make_the_corrected_message_a_duplicate():
    batch = scored([{"id": None, "reason": "missing or null field: V3", "p": 0, "o": 1}, {"id": "A", "p": 0, "o": 2}])
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    assert routed.predictions["transaction_id"].to_pylist() == ["A"]
    assert routed.quarantine["reason"].to_pylist() == ["missing or null field: V3"]


def test_within_batch_duplicates_keep_the_lowest_partition_then_offset():
    batch = scored([{"id": "A", "p": 1, "o": 0}, {"id": "A", "p": 0, "o": 5}, {"id": "A", "p": 0, "o": 8}])
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    assert keys(routed.predictions) == [(0, 5)]
    assert routed.quarantine["reason"].to_pylist() == [WITHIN_BATCH, WITHIN_BATCH]
    assert sorted(keys(routed.duplicates_without_raw)) == [(0, 8), (1, 0)]
    assert routed.quarantine["raw_value"].to_pylist() == [None, None]  # filled by with_raw from Kafka


def test_look_back_duplicates_name_the_batch_and_respect_the_bound():
    recent = RecentIds()
    recent.add(hash_ids(["old"]), batch_id=2, scored_at_ms=TAG.since_ms - 1)  # before the bound: not a duplicate
    recent.add(hash_ids(["seen"]), batch_id=5, scored_at_ms=TAG.since_ms + 1)
    batch = scored([{"id": "old", "p": 0, "o": 1}, {"id": "seen", "p": 0, "o": 2}, {"id": "new", "p": 0, "o": 3}])
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=recent, limits=LIMITS)
    assert sorted(routed.predictions["transaction_id"].to_pylist()) == ["new", "old"]
    assert routed.quarantine["reason"].to_pylist() == [ALREADY_SCORED + "5"]
    assert sorted(routed.scored_hashes) == sorted(hash_ids(["old", "new"]))


def test_a_hash_collision_within_the_batch_is_not_taken_for_a_repeat():
    batch = scored([{"id": "A", "p": 0, "o": 1}, {"id": "B", "p": 0, "o": 2}])
    batch = batch.set_column(batch.schema.get_field_index("id_hash"), "id_hash", pa.array([42, 42], pa.int64()))
    assert route_batch(batch, TAG, KEEP, True, None, LIMITS).predictions.num_rows == 2


def test_without_deduplication_repeated_ids_are_all_scored():
    batch = scored([{"id": "A", "p": 0, "o": 1}, {"id": "A", "p": 0, "o": 2}])
    assert route_batch(batch, TAG, KEEP, deduplicate=False, recent=None, limits=LIMITS).predictions.num_rows == 2


def test_a_non_finite_probability_is_quarantined_not_stored_as_legit():
    batch = scored(
        [
            {"id": "n", "p": 0, "o": 1, "probability": float("nan")},
            {"id": "i", "p": 0, "o": 2, "probability": float("inf")},
            {"id": "ok", "p": 0, "o": 3},
        ]
    )
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    assert routed.predictions["transaction_id"].to_pylist() == ["ok"]
    assert routed.quarantine["reason"].to_pylist() == [NAN_REASON, NAN_REASON]


def test_with_raw_fills_duplicates_from_the_kafka_rows():
    batch = scored([{"id": "A", "p": 0, "o": 1}, {"id": "A", "p": 0, "o": 2}])
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    raw = pa.table(
        {
            "partition": pa.array([0], pa.int32()),
            "offset": pa.array([2], pa.int64()),
            "topic": ["tx"],
            "key": [b"\xffA"],
            "value": [b'{"transaction_id": "A"}'],
        }
    )
    filled = with_raw(routed.quarantine, raw).to_pylist()[0]
    assert (filled["raw_value"], filled["key"], filled["kafka_topic"]) == (b'{"transaction_id": "A"}', "\\xffA", "tx")


def test_event_time_is_bounded_by_the_pinned_batch_start():
    def one(event_ms: int) -> pa.Table:
        batch = scored([{"id": "e", "p": 0, "o": 1}])
        return batch.set_column(
            batch.schema.get_field_index("event_time_ms"), "event_time_ms", pa.array([event_ms], pa.int64())
        )

    ahead = LIMITS.max_event_time_ahead_ms
    ok = route_batch(one(TAG.started_at_ms + ahead), TAG, KEEP, True, None, LIMITS)
    late = route_batch(one(TAG.started_at_ms + ahead + 1), TAG, KEEP, True, None, LIMITS)
    assert ok.predictions.num_rows == 1
    assert late.quarantine["reason"].to_pylist() == ["out of range: event_time more than 1440 minutes ahead"]


def test_metrics_row_counts_and_latency_from_the_commit_time():
    batch = scored(
        [
            {"id": "a", "p": 0, "o": 1, "flag": True},
            {"id": "b", "p": 0, "o": 2},
            {"id": None, "reason": "empty value", "p": 0, "o": 3},
        ]
    )
    routed = route_batch(batch, TAG, KEEP, deduplicate=True, recent=None, limits=LIMITS)
    row = metrics_row(routed, TAG, committed_ms=TAG.started_at_ms + 250).to_pylist()[0]
    assert (row["batch_id"], row["rows"], row["quarantined"], row["flagged"]) == (7, 2, 1, 1)
    assert row["processing_ms"] == 250.0
    assert row["latency_p50_ms"] == row["latency_p99_ms"] == row["latency_max_ms"] == 750.0  # 500 ms in Kafka + 250
    assert row["rows_per_s"] == 8.0


def test_metrics_row_of_a_batch_with_only_quarantined_messages():
    routed = route_batch(scored([{"id": None, "reason": "empty value", "p": 0, "o": 3}]), TAG, KEEP, True, None, LIMITS)
    row = metrics_row(routed, TAG, committed_ms=TAG.started_at_ms + 40).to_pylist()[0]
    assert (row["rows"], row["quarantined"], row["latency_p50_ms"], row["kafka_ts_min"]) == (0, 1, None, None)
