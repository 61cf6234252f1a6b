"""fraud_ml.streaming.scoring on Spark: both scorers decode and score Kafka-shaped rows like the pyfunc itself."""

from datetime import datetime, timezone

import mlflow
import numpy as np
import pytest

from fraud_ml.schema import FEATURES
from fraud_ml.streaming.messages import ValidationLimits, decode_messages
from fraud_ml.streaming.producer import encode_messages
from fraud_ml.streaming.scoring import KAFKA_SPARK_DDL, MessageScorer

BAD = [b"{not json", b"", b"[1, 2]", b'{"transaction_id": "x", "Time": 1e400}', bytes(range(256)), None]


def kafka_frame(spark, values: list, partitions: int = 3):
    now = datetime.now(timezone.utc)
    rows = [(f"k{i}".encode() if i % 2 else b"\xff\xfe", v, "tx", i % partitions, i, now) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SPARK_DDL).repartition(4)


@pytest.fixture(scope="module")
def messages(champion_test_split):
    frame = champion_test_split.sort_values("Class", ascending=False).head(120).reset_index(drop=True)
    _, values = encode_messages(frame, int(datetime.now(timezone.utc).timestamp() * 1000))
    return frame, values + BAD


@pytest.mark.parametrize("impl", ["arrow", "spark_udf"])
def test_scorers_match_the_pyfunc_and_keep_raw_bytes_of_refused_messages(
    spark, registered_champion, base_config, messages, impl
):
    frame, values = messages
    limits = ValidationLimits.from_config(base_config)
    scorer = MessageScorer(spark, registered_champion.champion.model_uri, impl, limits, ["Amount", "V14"], tasks=2)
    scorer.warm_up()
    out = scorer(kafka_frame(spark, values)).toArrow().to_pandas().sort_values("kafka_offset")
    assert len(out) == len(values)
    good, bad = out[out["reason"].isna()], out[out["reason"].notna()]
    assert len(good) == len(frame) and len(bad) == len(BAD)
    expected = mlflow.pyfunc.load_model(registered_champion.champion.model_uri).predict(frame[FEATURES])
    np.testing.assert_allclose(good["probability"].to_numpy(), expected["probability"].to_numpy(), rtol=1e-6)
    assert (good["decision"].to_numpy() == expected["decision"].to_numpy()).all()
    assert good["transaction_id"].tolist() == frame["transaction_id"].tolist()
    assert good["raw_value"].isna().all() and good["key"].isna().all()
    assert (good["Amount"].to_numpy() == frame["Amount"].to_numpy()).all()
    flagged = good[good["decision"] == 1]
    assert len(flagged) > 0 and good.loc[good["decision"] == 0, "reasons"].isna().all()
    assert all(set(p.split(" (")[0] for p in r.split("; ")) <= set(FEATURES) for r in flagged["reasons"])
    expected_reasons = decode_messages(BAD, limits)["reason"].tolist()
    assert bad["reason"].tolist() == expected_reasons
    raw = [None if v is None else bytes(v) for v in bad["raw_value"]]
    assert raw == BAD
    assert bad["kafka_topic"].eq("tx").all() and bad["key"].notna().all()


def test_more_kafka_partitions_than_tasks_are_coalesced(spark, registered_champion, base_config, messages):
    _, values = messages
    scorer = MessageScorer(
        spark, registered_champion.champion.model_uri, "arrow", ValidationLimits.from_config(base_config), [], tasks=2
    )
    scored = scorer(kafka_frame(spark, values, partitions=5))
    assert scored.rdd.getNumPartitions() == 2
    assert scored.count() == len(values)


def test_an_unknown_implementation_is_a_clear_error(spark, registered_champion, base_config):
    with pytest.raises(ValueError, match="stream.udf must be one of"):
        MessageScorer(
            spark,
            registered_champion.champion.model_uri,
            "cached",
            ValidationLimits.from_config(base_config),
            [],
            tasks=1,
        )
