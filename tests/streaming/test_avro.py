"""Avro messages (Confluent wire format, ``stream.message.format=avro``): every value a row or a reason.

The schema registry path is tested against a small HTTP server speaking the registry's
``GET /schemas/ids/<id>`` (no Confluent-compatible registry is served by the package registries
reachable here); the streams run on pinned ``.avsc`` schemas through the real broker.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_ml.config import load_config
from fraud_ml.errors import ConfigError
from fraud_ml.schema import FEATURES, ID_COL
from fraud_ml.streaming.avro import (
    AvroSource,
    ColumnDecoder,
    RegistryClient,
    SchemaRegistryError,
    avro_writer,
    compile_schema,
    wire,
    without_logical_types,
)
from fraud_ml.streaming.contract import MessageContract
from fraud_ml.streaming.messages import REASON, ValidationLimits, decode_messages
from fraud_ml.streaming.producer import encode_messages

ROOT = Path(__file__).resolve().parents[2]
NATIVE_AVSC = (ROOT / "conf" / "avro" / "transaction.avsc").read_text()
LIMITS = ValidationLimits.from_config(load_config(env={}))
NOW_MS = 1_790_000_000_000


def evolved(drop: tuple[str, ...] = (), retype: dict | None = None, extra: list | None = None) -> str:
    """The native schema with fields dropped, retyped or added (a producer's later version)."""
    schema = json.loads(NATIVE_AVSC)
    fields = [dict(f, type=(retype or {}).get(f["name"], f["type"])) for f in schema["fields"] if f["name"] not in drop]
    return json.dumps({**schema, "fields": [*(extra or []), *fields]})


V2_EXTRA = evolved(extra=[{"name": "merchant", "type": "string"}, {"name": "tags", "type": "boolean"}])
V3_NO_V3 = evolved(drop=("V3",))
V4_TEXT_AMOUNT = evolved(retype={"Amount": "string"})
V5_FLOATS = evolved(retype={c: "float" for c in FEATURES if c.startswith("V")} | {"Time": "long"})
V6_NULLABLE = evolved(retype={"V7": ["null", "double"]})
V7_ARRAYS = evolved(extra=[{"name": "items", "type": {"type": "array", "items": "string"}}])
CONTRACT = MessageContract(
    format="avro",
    avro=AvroSource(
        pinned=((1, NATIVE_AVSC), (2, V2_EXTRA), (3, V3_NO_V3), (4, V4_TEXT_AMOUNT), (5, V5_FLOATS),
                (6, V6_NULLABLE), (7, V7_ARRAYS)),
    ),
)  # fmt: skip


def frame_of(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["Time"], frame["Amount"] = rng.uniform(0, 1e5, rows).round(), rng.uniform(0, 1e3, rows)
    frame[ID_COL] = [str(uuid.UUID(int=int(rng.integers(2**62)))) for _ in range(rows)]
    frame["Class"] = rng.integers(0, 2, rows)
    frame["source"] = "synthetic"
    return frame


def encode_with(schema_text: str, schema_id: int, records: list[dict]) -> list[bytes]:
    parsed = fastavro.parse_schema(json.loads(schema_text))
    out = []
    for record in records:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record)
        out.append(wire(schema_id, buf.getvalue()))
    return out


def native_record(tx_id: str = "tx-1", **changes) -> dict:
    record = {ID_COL: tx_id, "event_time": NOW_MS - 5, **{c: 0.5 for c in FEATURES}, "label": 0, "source": "s"}
    record.update(changes)
    return record


# ----------------------------------------------------------------------------- decoding
def test_what_the_producer_writes_in_avro_decodes_as_its_json_twin():
    frame = frame_of(300)
    writer = avro_writer(CONTRACT.avro, 1)
    keys, values = encode_messages(frame, NOW_MS - 10, CONTRACT, writer)
    assert all(v[0] == 0 and int.from_bytes(v[1:5], "big") == 1 for v in values)
    avro_rows = decode_messages(values, LIMITS, NOW_MS, CONTRACT, keys=keys)
    json_keys, json_values = encode_messages(frame, NOW_MS - 10)
    json_rows = decode_messages(json_values, LIMITS, NOW_MS)
    assert avro_rows[REASON].isna().all(), avro_rows[REASON].dropna().tolist()[:3]
    assert avro_rows[ID_COL].tolist() == frame[ID_COL].tolist()
    # Avro carries the exact doubles; JSON keeps 15 decimal places
    np.testing.assert_array_equal(avro_rows[FEATURES].to_numpy(), frame[FEATURES].to_numpy())
    np.testing.assert_allclose(avro_rows[FEATURES].to_numpy(), json_rows[FEATURES].to_numpy(), rtol=1e-14, atol=1e-15)
    for column in ("label", "event_time", "source"):
        assert avro_rows[column].tolist() == json_rows[column].tolist()


def test_each_bad_value_gets_its_reason():
    good = encode_with(NATIVE_AVSC, 1, [native_record("ok-1")])[0]
    values = [
        None,
        b"",
        b'{"transaction_id": "json-1"}',
        wire(99, good[5:]),
        good[:20],
        good + b"\x00",
        *encode_with(V3_NO_V3, 3, [{k: v for k, v in native_record("v3").items() if k != "V3"}]),
        *encode_with(V4_TEXT_AMOUNT, 4, [native_record("v4", Amount="12.5")]),
        *encode_with(V6_NULLABLE, 6, [native_record("v6", V7=None)]),
        *encode_with(NATIVE_AVSC, 1, [native_record(""), native_record("ok-2", Amount=-1.0), native_record("x y")]),
        b"\x00" + good[1:5] + b"\x80" * 12,
        good,
    ]
    reasons = decode_messages(values, LIMITS, NOW_MS, CONTRACT)[REASON].tolist()
    assert reasons == [
        "empty value",
        "empty value",
        "not Avro: no Confluent wire-format header (magic byte 0, schema id)",
        "unknown schema id 99 (not in the pinned schemas)",
        "undecodable Avro body (schema id 1): truncated in Time",
        "undecodable Avro body (schema id 1): trailing bytes after the record",
        "incompatible schema id 3: no field V3",
        "incompatible schema id 4: Amount is string, expected number",
        "missing or null field: V7",
        "missing field: transaction_id",
        "out of range: negative Amount",
        "invalid transaction_id: characters outside [A-Za-z0-9][A-Za-z0-9._:@/+=-]*",
        "undecodable Avro body (schema id 1): bad varint in transaction_id",
        None,
    ]


def test_compatible_evolutions_decode():
    extra = encode_with(V2_EXTRA, 2, [{**native_record("v2"), "merchant": "m", "tags": True}])
    floats = encode_with(V5_FLOATS, 5, [native_record("v5", Time=12, V1=0.25)])
    nullable = encode_with(V6_NULLABLE, 6, [native_record("v6", V7=1.5)])
    blocks = encode_with(V7_ARRAYS, 7, [{**native_record("v7"), "items": ["a", "b"]}])
    assert compile_schema(7, V7_ARRAYS).per_message and not compile_schema(2, V2_EXTRA).per_message
    out = decode_messages(extra + floats + nullable + blocks, LIMITS, NOW_MS, CONTRACT)
    assert out[REASON].isna().all(), out[REASON].tolist()
    assert out[ID_COL].tolist() == ["v2", "v5", "v6", "v7"]
    assert out.loc[1, "Time"] == 12.0 and out.loc[1, "V1"] == 0.25 and out.loc[2, "V7"] == 1.5


def test_the_seed_preset_in_avro_names_its_fields():
    seed_schema = json.dumps(
        {
            "type": "record",
            "name": "Seed",
            "fields": [{"name": "id", "type": "string"}, *[{"name": c, "type": "double"} for c in FEATURES]]
            + [{"name": "Class", "type": "int"}],
        }
    )
    cfg = load_config(overrides=["stream.message.preset=seed", "stream.message.format=avro"], env={})
    seed = MessageContract.from_mapping(
        {**MessageContract.from_config(cfg).as_mapping(), "avro": {"pinned": [[1, seed_schema]]}}
    )
    values = encode_with(seed_schema, 1, [{"id": "s-1", **{c: 1.0 for c in FEATURES}, "Class": 1}])
    out = decode_messages(values, LIMITS, NOW_MS, seed, timestamps_ms=[NOW_MS])
    assert out[REASON].tolist() == [None] and out["label"].tolist() == [1] and out["event_time"].tolist() == [NOW_MS]
    missing_class = json.dumps({**json.loads(seed_schema), "fields": json.loads(seed_schema)["fields"][:-1]})
    seed2 = MessageContract.from_mapping({**seed.as_mapping(), "avro": {"pinned": [[2, missing_class]]}})
    values = encode_with(missing_class, 2, [{"id": "s-2", **{c: 1.0 for c in FEATURES}}])
    assert decode_messages(values, LIMITS, NOW_MS, seed2, timestamps_ms=[NOW_MS])[REASON].tolist() == [None]


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {
                ID_COL: st.text(max_size=20),
                "event_time": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
                **{c: st.floats(allow_nan=True, allow_infinity=True) for c in FEATURES},
                "label": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
                "source": st.one_of(st.none(), st.text(max_size=10)),
            }
        ),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    noise=st.lists(st.binary(max_size=40), max_size=4),
)
def test_the_column_decoder_agrees_with_fastavro_on_any_bytes(records, cuts, noise):
    """Valid bodies, truncated ones and arbitrary bytes: the vectorised decoder reads what fastavro reads
    (the same values) and refuses what fastavro cannot read or leaves bytes after."""
    bodies = [v[5:] for v in encode_with(NATIVE_AVSC, 1, records)]
    bodies += [bodies[i % len(bodies)][:cut] for i, cut in enumerate(cuts)] + noise
    decoder = compile_schema(1, NATIVE_AVSC)
    assert isinstance(decoder, ColumnDecoder) and not decoder.per_message
    wanted = {ID_COL: "string", "event_time": "integer", **{c: "number" for c in FEATURES}, "source": "string"}
    out, why = decoder.decode(bodies, wanted)
    parsed = fastavro.parse_schema(without_logical_types(json.loads(NATIVE_AVSC)))  # raw longs, as we read them
    for i, body in enumerate(bodies):
        stream = io.BytesIO(body)
        try:
            expected = fastavro.schemaless_reader(stream, parsed, None)
            readable = stream.tell() == len(body)
        except Exception:  # noqa: BLE001 - the oracle: whatever fastavro refuses, we must refuse too
            readable = False
        assert (why[i] is None) == readable, (body, why[i])
        if readable:
            assert out[ID_COL][0][i] == expected[ID_COL]
            assert out["source"][0][i] == expected["source"]
            stamp = expected["event_time"]
            assert out["event_time"][1][i] == (stamp is not None)
            for c in FEATURES:
                np.testing.assert_equal(out[c][0][i], expected[c])


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.tuples(st.sampled_from([1, 2, 5, 6, 7]), st.binary(max_size=300)).map(lambda t: wire(*t)),
        ),
        max_size=8,
    )
)
def test_any_bytes_under_a_known_schema_id_give_a_row_or_a_reason(values):
    """Vectorised schemas (1, 2, 5, 6) and one read per message with fastavro (7: it holds an array)."""
    out = decode_messages(values, LIMITS, NOW_MS, CONTRACT)
    assert len(out) == len(values)
    valid = out[REASON].isna()
    assert out.loc[valid, FEATURES].notna().all().all()
    assert out.loc[~valid, FEATURES].isna().all().all()


def test_avro_without_any_schema_source_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="neither stream.message.schema_registry_url nor"):
        MessageContract.from_config(
            load_config(overrides=["stream.message.format=avro", "stream.message.avro_schemas={}"], env={})
        )
    # JSON never reads the pinned files
    MessageContract.from_config(load_config(overrides=["stream.message.avro_schemas.1=/nonexistent.avsc"], env={}))
    with pytest.raises(ConfigError, match="cannot read schema 1"):
        load = load_config(
            overrides=["stream.message.format=avro", "stream.message.avro_schemas.1=/nonexistent.avsc"], env={}
        )
        MessageContract.from_config(load)


# ----------------------------------------------------------------------------- the registry client
class _Registry(BaseHTTPRequestHandler):
    schemas: dict[int, str] = {}
    auth = "Basic " + base64.b64encode(b"reader:s3cret").decode()

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.end_headers()
            return
        schema_id = int(self.path.rsplit("/", 1)[-1])
        if schema_id not in self.schemas:
            body = json.dumps({"error_code": 40403, "message": "Schema not found"}).encode()
            self.send_response(404)
        else:
            body = json.dumps({"schema": self.schemas[schema_id]}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def registry():
    _Registry.schemas = {11: NATIVE_AVSC}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_schemas_come_from_the_registry_with_basic_auth_from_the_environment(registry, monkeypatch):
    monkeypatch.setenv("SCHEMA_REGISTRY_USERNAME", "reader")
    monkeypatch.setenv("SCHEMA_REGISTRY_PASSWORD", "s3cret")
    client = RegistryClient(registry)
    assert json.loads(client.schema_text(11))["name"] == "Transaction"
    assert client.schema_text(12) is None
    contract = MessageContract(format="avro", avro=AvroSource(registry_url=registry))
    values = encode_with(NATIVE_AVSC, 11, [native_record("r-1")]) + encode_with(NATIVE_AVSC, 12, [native_record()])
    assert decode_messages(values, LIMITS, NOW_MS, contract)[REASON].tolist() == [
        None,
        "unknown schema id 12 (not in the registry)",
    ]


def test_a_registry_that_refuses_or_is_down_fails_loudly(registry, monkeypatch):
    monkeypatch.delenv("SCHEMA_REGISTRY_USERNAME", raising=False)
    with pytest.raises(SchemaRegistryError, match="answered 401"):
        RegistryClient(registry).schema_text(11)
    with pytest.raises(SchemaRegistryError, match="unreachable"):
        RegistryClient("http://127.0.0.1:9", timeout_s=2).schema_text(11)


# ----------------------------------------------------------------------------- through the broker and the stream
@pytest.mark.integration
@pytest.mark.parametrize("reader, udf", [("librdkafka", "arrow"), ("spark_kafka", "spark_udf")])
def test_avro_through_the_broker_and_the_stream(
    spark, kafka_broker, registered_champion, make_config, champion_test_split, reader, udf
):
    from deltalake import DeltaTable

    from fraud_ml.io.kafka import create_topic
    from fraud_ml.streaming.producer import replay, replay_frame

    from .contract_runs import drain_and_check

    topic = f"avro-{reader}-{udf}"
    cfg = make_config(
        f"kafka.bootstrap_servers={kafka_broker.bootstrap_servers}",
        f"kafka.topic={topic}",
        "kafka.partitions=2",
        f"stream.reader={reader}",
        f"stream.udf={udf}",
        "stream.message.format=avro",
        f"stream.message.avro_schemas.1={ROOT / 'conf' / 'avro' / 'transaction.avsc'}",
    )
    create_topic(kafka_broker.bootstrap_servers, topic, 2)
    good = replay_frame(champion_test_split, 150)
    replay(good, cfg, rate=0)
    value = encode_with(NATIVE_AVSC, 1, [native_record("bad-1")])[0]
    bad = {
        "unknown schema id 42 (not in the pinned schemas)": (b"bad-1", wire(42, value[5:])),
        "undecodable Avro body (schema id 1): trailing bytes after the record": (b"bad-2", value + b"\x01"),
        "not Avro: no Confluent wire-format header (magic byte 0, schema id)": (b"bad-3", b'{"transaction_id": "j"}'),
        "out of range: negative Amount": (
            b"bad-4",
            encode_with(NATIVE_AVSC, 1, [native_record("bad-4", Amount=-2.0)])[0],
        ),
    }
    drain_and_check(spark, cfg, good, bad)
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas()
    assert set(quarantine["raw_value"]) == {v for _, v in bad.values()}
