import json

import pytest

from fraud_ml.errors import DataSchemaError, KafkaUnavailableError
from fraud_ml.schema import FEATURES
from fraud_ml.streaming.producer import encode_messages, replay, replay_frame
from fraud_ml.training.data import SyntheticCreditCardGenerator


def frame(n=5):
    f = SyntheticCreditCardGenerator(n_rows=n, fraud_rate=0.2, seed=1).generate()
    f.insert(0, "transaction_id", [f"tx-{i}" for i in range(n)])
    f["source"] = "generated"
    return f


def test_encode_messages_carries_features_label_and_event_time():
    f = frame()
    keys, values = encode_messages(f, 1234)
    assert keys == [f"tx-{i}".encode() for i in range(5)]
    body = json.loads(values[2])
    assert body["transaction_id"] == "tx-2" and body["event_time"] == 1234 and body["source"] == "generated"
    assert body["label"] == int(f["Class"].iloc[2]) and "Class" not in body
    for c in FEATURES:
        assert body[c] == pytest.approx(f[c].iloc[2], rel=1e-12)


def test_replay_frame_cycles_with_unique_ids():
    f = frame(4)
    out = replay_frame(f, 10)
    assert len(out) == 10 and out["transaction_id"].is_unique
    assert out["transaction_id"].iloc[4] == "tx-0-r1" and out["transaction_id"].iloc[9] == "tx-1-r2"
    assert len(replay_frame(f, 3)) == 3 and len(replay_frame(f)) == 4
    with pytest.raises(DataSchemaError, match="lacks columns"):
        replay_frame(f.drop(columns=["V3"]), 2)


def test_unreachable_broker_is_one_clear_error(base_config):
    cfg = base_config.with_overrides(["kafka.bootstrap_servers=127.0.0.1:1"], env={})
    with pytest.raises(KafkaUnavailableError, match="unreachable at 127.0.0.1:1"):
        replay(frame(), cfg)
