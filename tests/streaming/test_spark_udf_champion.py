"""The stream scores through ``mlflow.pyfunc.spark_udf`` (stream.udf=spark_udf); the scorer itself: test_scoring.py."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from fraud_ml.schema import FEATURES


@pytest.mark.integration
def test_stream_with_spark_udf_records_the_model_version(
    spark, kafka_broker, registered_champion, make_config, champion_test_split
):
    from fraud_ml.io.kafka import create_topic
    from fraud_ml.streaming.producer import replay, replay_frame
    from fraud_ml.streaming.query import run_stream

    topic = "spark-udf-stream"
    cfg = make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        f"kafka.topic={topic}",
        "kafka.partitions=1",
        "stream.udf=spark_udf",
    )
    split = champion_test_split
    frame = replay_frame(split.sort_values("Class", ascending=False), 200)  # every fraud, then normals
    create_topic(kafka_broker.bootstrap_servers, topic, 1)
    assert replay(frame, cfg, rate=0).sent == 200

    run_stream(spark, cfg, available_now=True)

    preds = DeltaTable(cfg.table_path("predictions")).to_pandas()
    assert len(preds) == 200 and set(preds["transaction_id"]) == set(frame["transaction_id"])
    assert preds["model_version"].eq(registered_champion.champion.version).all()
    assert ((preds["probability"] >= registered_champion.threshold).astype(int) == preds["decision"]).all()
    flagged = preds[preds["decision"] == 1]
    assert len(flagged) > 0 and preds.loc[preds["decision"] == 0, "reasons"].isna().all()
    assert all(set(p.split(" (")[0] for p in r.split("; ")) <= set(FEATURES) for r in flagged["reasons"])
