"""The message contract (``stream.message``): presets, producer field names, id from the key, event time
from the Kafka timestamp; decoded by fraud_ml.streaming.messages and sent by the producer."""

import json
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_ml.config import load_config
from fraud_ml.errors import ConfigError
from fraud_ml.schema import FEATURES, ID_COL
from fraud_ml.streaming.contract import NATIVE, OUR_FIELDS, MessageContract
from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages
from fraud_ml.streaming.producer import encode_messages

LIMITS = ValidationLimits.from_config(load_config(env={}))
NOW_MS = 1_790_000_000_000
SEED = MessageContract.from_config(load_config(overrides=["stream.message.preset=seed"], env={}))
KEYED = MessageContract(transaction_id_from="key", event_time_from="kafka_timestamp")


def seed_body(tx_id: str, **changes) -> dict:
    """A message as the original design's producer wrote it (Kaggle names, ``id``, ``Class``)."""
    body = {"Time": 0, **{c: 0.25 for c in FEATURES if c not in ("Time", "Amount")}, "Amount": 149.62}
    body.update({"Class": 0, "id": tx_id, **changes})
    return body


def test_the_default_contract_is_native_and_presets_resolve():
    assert MessageContract.from_config(load_config(env={})) == NATIVE
    assert SEED.name(ID_COL) == "id" and SEED.name("label") == "Class"
    assert SEED.event_time_from == "kafka_timestamp" and SEED.transaction_id_from == "field"
    keyed = MessageContract.from_config(
        load_config(overrides=["stream.message.preset=seed", "stream.message.transaction_id_from=key"], env={})
    )
    assert keyed.transaction_id_from == "key" and keyed.name("label") == "Class"
    renamed = MessageContract.from_config(load_config(overrides=["stream.message.fields.Amount=amt"], env={}))
    assert renamed.name("Amount") == "amt" and renamed.name("V1") == "V1"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["stream.message.preset=avro-ish"], "is not one of the presets"),
        (["stream.message.presets.mine=3", "stream.message.preset=mine"], "must be a mapping"),
        (["stream.message.presets.mine={fields: x}", "stream.message.preset=mine"], "must be a mapping"),
        (["stream.message.transaction_id_from=header"], "transaction_id_from must be one of"),
        (["stream.message.event_time_from=now"], "event_time_from must be one of"),
        (["stream.message.fields.merchant=m"], "unknown fields ['merchant']"),
        (["stream.message.fields.V1=x", "stream.message.fields.V2=x"], "onto the same producer field: ['x']"),
        (["stream.message.fields.V1="], "non-empty field names"),
        (["stream.message.fields.V1=\u00a0"], "non-empty field names"),
        (['stream.message.fields.V1=a"b'], "a backslash, a quote or a control character"),
    ],
)
def test_a_bad_contract_fails_with_one_line(overrides, message):
    cfg = load_config(overrides=overrides, env={})
    with pytest.raises(ConfigError) as err:
        MessageContract.from_config(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_seed_messages_decode_and_reasons_name_the_producers_fields():
    values = [
        json.dumps(seed_body("a-1")).encode(),
        json.dumps({k: v for k, v in seed_body("x").items() if k != "id"}).encode(),
        json.dumps(seed_body("a-3", Class=2)).encode(),
        json.dumps(seed_body("a-4", Class="fraud")).encode(),
        json.dumps(seed_body("a-5", Amount=-1)).encode(),
        json.dumps(seed_body("a-6", V3=None)).encode(),
    ]
    out = decode_messages(values, LIMITS, NOW_MS, SEED, timestamps_ms=[NOW_MS - 1000] * len(values))
    assert out[REASON].tolist() == [
        None,
        "missing field: id",
        "out of range: Class must be 0 or 1",
        "wrong field type: Class (string, expected integer)",
        "out of range: negative Amount",
        "missing or null field: V3",
    ]
    assert out.loc[0, ID_COL] == "a-1" and out.loc[0, "Time"] == 0.0 and out.loc[0, "Amount"] == 149.62
    assert out.loc[0, "event_time"] == NOW_MS - 1000 and out.loc[0, "label"] == 0


def test_the_id_from_the_key_and_the_event_time_from_the_kafka_timestamp():
    body = {k: v for k, v in seed_body("ignored").items() if k not in ("id", "Class")}
    value = json.dumps(body).encode()
    keys = [b"k-1", None, b"", b"\xff\xfe", b"k-5", b"k-6"]
    stamps = [NOW_MS, NOW_MS, NOW_MS, NOW_MS, -1, 946_684_799_000]  # -1: no timestamp; then 1999-12-31
    out = decode_messages([value] * 6, LIMITS, NOW_MS, KEYED, keys=keys, timestamps_ms=stamps)
    assert out[REASON].tolist() == [
        None,
        "missing field: transaction_id (Kafka key)",
        "missing field: transaction_id (Kafka key)",
        "invalid transaction_id (Kafka key): not UTF-8",
        None,
        "out of range: event_time (Kafka timestamp) before 2000-01-01",
    ]
    assert out.loc[0, ID_COL] == "k-1" and out.loc[0, "event_time"] == NOW_MS
    assert out.loc[4, ID_COL] == "k-5" and out["event_time"].isna()[4]
    ahead = decode_messages([value], LIMITS, NOW_MS, KEYED, keys=[b"k"], timestamps_ms=[NOW_MS + 2 * 86_400_000])
    assert ahead[REASON].iloc[0] == "out of range: event_time (Kafka timestamp) more than 1440 minutes ahead"


def test_a_contract_that_needs_keys_or_timestamps_refuses_a_call_without_them():
    value = json.dumps(seed_body("a")).encode()
    with pytest.raises(ValueError, match="pass keys"):
        decode_messages([value], LIMITS, NOW_MS, KEYED, timestamps_ms=[NOW_MS])
    with pytest.raises(ValueError, match="pass timestamps_ms"):
        decode_messages([value], LIMITS, NOW_MS, SEED)


# A name that is only Unicode white space (e.g. U+00A0, U+0085) is refused by the contract itself.
_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters='\\"'), min_size=1, max_size=12
).filter(str.strip)


@st.composite
def contracts(draw) -> MessageContract:
    ours = draw(st.lists(st.sampled_from(OUR_FIELDS), unique=True, max_size=8))
    theirs = draw(st.lists(_names, min_size=len(ours), max_size=len(ours), unique=True))
    taken = set(OUR_FIELDS) - set(ours)
    pairs = [(o, t) for o, t in zip(ours, theirs) if t not in taken]  # no clash with an unrenamed field
    return MessageContract(
        fields=tuple(sorted(pairs)),
        transaction_id_from=draw(st.sampled_from(["field", "key"])),
        event_time_from=draw(st.sampled_from(["field", "kafka_timestamp"])),
    )


@settings(max_examples=60, deadline=None)
@given(contract=contracts(), rows=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_what_the_producer_sends_in_any_contract_decodes_back_under_it(contract, rows, seed):
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["Time"], frame["Amount"] = rng.uniform(0, 1e5, rows), rng.uniform(0, 1e3, rows)
    frame[ID_COL] = [str(uuid.UUID(int=int(rng.integers(2**62)))) for _ in range(rows)]
    frame["Class"] = rng.integers(0, 2, rows)
    frame["source"] = "synthetic"
    keys, values = encode_messages(frame, NOW_MS - 10, contract)
    assert set(json.loads(values[0])) == {contract.name(f) for f in contract.body_fields}
    assert keys == [i.encode() for i in frame[ID_COL]]
    out = decode_messages(values, LIMITS, NOW_MS, contract, keys=keys, timestamps_ms=[NOW_MS - 20] * rows)
    assert out[REASON].isna().all(), out[REASON].dropna().tolist()
    assert out[ID_COL].tolist() == frame[ID_COL].tolist()
    # to_json keeps 15 decimal places (double_precision=15), not 15 significant digits
    np.testing.assert_allclose(out[FEATURES].to_numpy(), frame[FEATURES].to_numpy(), rtol=1e-14, atol=1e-15)
    assert out["label"].tolist() == frame["Class"].tolist()
    expected_event = NOW_MS - (20 if contract.event_time_from == "kafka_timestamp" else 10)
    assert (out["event_time"] == expected_event).all()


E2E_CONTRACTS = [
    pytest.param(["stream.message.preset=seed"], "librdkafka", "arrow", id="seed-preset-fused"),
    pytest.param(
        [
            "stream.message.transaction_id_from=key",
            "stream.message.event_time_from=kafka_timestamp",
            "stream.message.fields.label=Class",
        ],
        "spark_kafka",
        "spark_udf",
        id="key-and-kafka-timestamp-spark-udf",
    ),
]


@pytest.mark.integration
@pytest.mark.parametrize("overrides, reader, udf", E2E_CONTRACTS)
def test_a_producers_contract_through_the_broker_and_the_stream(
    spark, kafka_broker, registered_champion, make_config, champion_test_split, overrides, reader, udf
):
    from fraud_ml.io.kafka import create_topic
    from fraud_ml.streaming.producer import replay, replay_frame

    from .contract_runs import drain_and_check

    topic = f"contract-{reader}-{udf}"
    cfg = make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        f"kafka.topic={topic}",
        "kafka.partitions=2",
        f"stream.reader={reader}",
        f"stream.udf={udf}",
        *overrides,
    )
    contract = MessageContract.from_config(cfg)
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    good = replay_frame(champion_test_split, 120)
    replay(good, cfg, rate=0)
    body = json.loads(encode_messages(good.head(1), NOW_MS, contract)[1][0])
    label = contract.name("label")
    if contract.transaction_id_from == "key":
        bad = {
            "missing field: transaction_id (Kafka key)": (None, json.dumps(body).encode()),
            f"wrong field type: {label} (string, expected integer)": (
                b"bad-2",
                json.dumps({**body, label: "x"}).encode(),
            ),
        }
    else:
        without_id = {k: v for k, v in body.items() if k != contract.name(ID_COL)}
        bad = {
            f"missing field: {contract.name(ID_COL)}": (b"bad-1", json.dumps(without_id).encode()),
            f"out of range: {label} must be 0 or 1": (
                b"bad-2",
                json.dumps({**body, label: 3, contract.name(ID_COL): "bad-2"}).encode(),
            ),
        }
    preds = drain_and_check(spark, cfg, good, bad)
    if contract.event_time_from == "kafka_timestamp":
        assert (preds["event_time"] == preds["kafka_timestamp"]).all()


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.one_of(st.none(), st.binary(max_size=40)), min_size=1, max_size=10),
    stamp=st.integers(-(2**62), 2**62),
)
def test_any_kafka_key_and_timestamp_give_a_scored_row_or_a_reason(keys, stamp):
    body = {k: v for k, v in seed_body("ignored").items() if k not in ("id", "Class")}
    values = [json.dumps(body).encode()] * len(keys)
    out = decode_messages(values, LIMITS, NOW_MS, KEYED, keys=keys, timestamps_ms=[stamp] * len(keys))
    assert len(out) == len(keys)
    refused = out[REASON].notna()
    assert (refused == out[ID_COL].isna()).all()
    for key, tx_id, reason in zip(keys, out[ID_COL], out[REASON]):
        assert reason is not None or tx_id == bytes(key).decode("utf-8")
