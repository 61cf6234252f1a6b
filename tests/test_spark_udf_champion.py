"""The registered champion loads through ``mlflow.pyfunc.spark_udf`` (stream.udf=spark_udf)."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from fraud_ml.schema import FEATURES
from fraud_ml.scoring import build_scoring_udf


def test_spark_udf_scores_like_the_pyfunc(spark, registered_champion, champion_test_split):
    uri = registered_champion.champion.model_uri
    frame = champion_test_split
    # All frauds (so some rows are flagged) plus some normals, kept small.
    frame = frame.sort_values("Class", ascending=False).head(150).reset_index(drop=True)
    score = build_scoring_udf(spark, uri, impl="spark_udf")
    df = spark.createDataFrame(frame[["transaction_id", *FEATURES]])
    out = (df.select("transaction_id", score(*[F.col(c) for c in FEATURES]).alias("p"))
             .select("transaction_id", "p.probability", "p.decision", "p.reasons").toPandas())
    out = out.set_index("transaction_id").loc[frame["transaction_id"]].reset_index()

    expected = mlflow.pyfunc.load_model(uri).predict(frame[FEATURES])
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=1e-6)
    assert (out["decision"].to_numpy() == expected["decision"].to_numpy()).all()
    threshold = registered_champion.threshold
    assert ((out["probability"] >= threshold).astype(int) == out["decision"]).all()
    flagged = out[out["decision"] == 1]
    assert len(flagged) > 0 and out.loc[out["decision"] == 0, "reasons"].isna().all()
    for reason in flagged["reasons"]:
        names = [part.split(" (")[0] for part in reason.split("; ")]
        assert len(names) == 3 and set(names) <= set(FEATURES), reason


@pytest.mark.integration
def test_stream_with_spark_udf_records_the_model_version(spark, kafka_broker, registered_champion, make_config,
                                                         champion_test_split):
    from fraud_ml.kafka_local import create_topic
    from fraud_ml.producer import replay, replay_frame
    from fraud_ml.streaming import run_stream

    topic = "spark-udf-stream"
    cfg = make_config(f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}", f"kafka.topic={topic}",
                      "kafka.partitions=1", "stream.udf=spark_udf")
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


@pytest.mark.parametrize("impl", ["cached", "spark_udf"])
def test_message_scorer_decodes_validates_and_scores_like_the_pyfunc(spark, registered_champion, champion_test_split,
                                                                      impl):
    from datetime import datetime, timezone

    from fraud_ml.producer import encode_messages
    from fraud_ml.scoring import MessageScorer
    from test_streaming_parse import KAFKA_SCHEMA

    frame = champion_test_split.sort_values("Class", ascending=False).head(120).reset_index(drop=True)
    keys, values = encode_messages(frame, 1_700_000_000_000)
    values = list(values) + [b"{not json", b'{"transaction_id": "neg", "Amount": -1}']
    now = datetime.now(timezone.utc)
    rows = [(k, v, "t", 0, i, now) for i, (k, v) in enumerate(zip(keys + [b"x", b"y"], values))]
    scorer = MessageScorer(spark, registered_champion.champion.model_uri, impl, keep_features=["Amount", "V14"])
    out = scorer(spark.createDataFrame(rows, KAFKA_SCHEMA)).toPandas().sort_values("offset").reset_index(drop=True)

    assert list(out.columns[-10:]) == ["reason", "transaction_id", "event_time", "label", "source", "Amount", "V14",
                                       "probability", "decision", "reasons"]
    good, bad = out.iloc[:len(frame)], out.iloc[len(frame):]
    assert good["reason"].isna().all() and bad["reason"].notna().all()
    assert bad["probability"].isna().all() and bad["decision"].isna().all()
    assert good["transaction_id"].tolist() == frame["transaction_id"].tolist()
    np.testing.assert_allclose(good["Amount"], frame["Amount"])
    expected = mlflow.pyfunc.load_model(registered_champion.champion.model_uri).predict(frame[FEATURES])
    np.testing.assert_allclose(good["probability"], expected["probability"], rtol=1e-6)
    assert (good["decision"].to_numpy() == expected["decision"].to_numpy()).all()
    assert good["decision"].sum() > 0 and good.loc[good["decision"] == 0, "reasons"].isna().all()
