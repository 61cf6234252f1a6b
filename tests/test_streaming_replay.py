"""A micro-batch replayed after a crash between its commits: nothing is written twice, nothing hangs."""
import json
import shutil
from datetime import datetime, timezone

import pytest
from deltalake import DeltaTable

from fraud_ml.scoring import MessageScorer
from fraud_ml.schema import FEATURES
from fraud_ml.streaming import MicroBatchWriter
from test_streaming_parse import KAFKA_SCHEMA


@pytest.mark.timeout(600)
def test_replayed_batch_after_predictions_commit(spark, registered_champion, make_config):
    cfg = make_config()
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(40):
        body = {"transaction_id": f"rp-{i}", "event_time": 1, **{c: 0.1 * (i % 7) for c in FEATURES}, "label": i % 2}
        rows.append((f"rp-{i}".encode(), json.dumps(body).encode(), "t", i % 2, i, now))
    rows.append((b"bad", b"{oops", "t", 0, 99, now))
    batch = spark.createDataFrame(rows, KAFKA_SCHEMA)
    scorer = MessageScorer(spark, registered_champion.champion.model_uri, "cached")
    writer = MicroBatchWriter(cfg, scorer, registered_champion.champion.version)

    writer(batch, 0)
    assert DeltaTable(cfg.table_path("predictions")).to_pyarrow_dataset().count_rows() == 40
    # The process died after the predictions commit, before quarantine and metrics were written.
    shutil.rmtree(cfg.table_path("batch_metrics"))
    shutil.rmtree(cfg.table_path("quarantine"))

    writer(batch, 0)  # Structured Streaming replays the same batch id

    preds = DeltaTable(cfg.table_path("predictions")).to_pandas()
    assert len(preds) == 40 and preds["transaction_id"].is_unique
    metrics = DeltaTable(cfg.table_path("batch_metrics")).to_pandas()
    assert metrics["batch_id"].tolist() == [0] and metrics["rows"].tolist() == [40]
    assert metrics["quarantined"].tolist() == [1]
    assert DeltaTable(cfg.table_path("quarantine")).to_pyarrow_dataset().count_rows() == 1
