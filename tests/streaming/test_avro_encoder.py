"""fraud_ml.streaming.avro_encoder: a flat record's rows encoded a column at a time, byte for byte as fastavro."""

from __future__ import annotations

import io
import json

import fastavro
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_ml.streaming.avro import AvroWriter, wire
from fraud_ml.streaming.avro_encoder import encode_frame

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Flat",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": None},
            {"name": "x1", "type": "double"},
            {"name": "x2", "type": "double"},
            {"name": "small", "type": "float"},
            {"name": "count", "type": "long"},
            {"name": "code", "type": "int"},
            {"name": "flag", "type": "boolean"},
            {"name": "blob", "type": "bytes"},
            {"name": "maybe_x", "type": ["double", "null"]},
            {"name": "maybe_n", "type": ["null", "int"], "default": None},
            {"name": "maybe_s", "type": ["null", "string"], "default": None},
            {"name": "nothing", "type": "null"},
            {"name": "x3", "type": "double"},
        ],
    }
)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
DOUBLES = st.floats(allow_nan=False, width=64)
FLOAT32 = st.floats(allow_nan=False, width=32)


def fastavro_bytes(frame: pd.DataFrame, header: bytes = b"") -> list[bytes]:
    """What AvroWriter's record-by-record path writes for the frame."""
    out = []
    for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        stream = io.BytesIO()
        fastavro.schemaless_writer(stream, SCHEMA, record)
        out.append(header + stream.getvalue())
    return out


@st.composite
def flat_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 40))
    rows = st.lists
    frame = pd.DataFrame(
        {
            "id": draw(rows(st.text(max_size=30), min_size=n, max_size=n)),
            "x1": draw(rows(DOUBLES, min_size=n, max_size=n)),
            "x2": np.array(draw(rows(st.integers(-(2**62), 2**62), min_size=n, max_size=n)), dtype=np.int64),
            "small": draw(rows(FLOAT32, min_size=n, max_size=n)),
            "count": np.array(draw(rows(INT64, min_size=n, max_size=n)), dtype=np.int64),
            "code": np.array(draw(rows(INT32, min_size=n, max_size=n)), dtype=np.int64),
            "flag": np.array(draw(rows(st.booleans(), min_size=n, max_size=n)), dtype=bool),
            "blob": draw(rows(st.binary(max_size=20), min_size=n, max_size=n)),
            "maybe_x": draw(rows(st.one_of(st.none(), DOUBLES), min_size=n, max_size=n)),
            "maybe_n": pd.array(draw(rows(st.one_of(st.none(), INT32), min_size=n, max_size=n)), dtype="Int64"),
            "maybe_s": draw(rows(st.one_of(st.none(), st.text(max_size=10)), min_size=n, max_size=n)),
            "x3": draw(rows(DOUBLES, min_size=n, max_size=n)),
            "extra": np.zeros(n),  # not in the schema: ignored, as fastavro ignores it
        }
    )
    frame["maybe_x"] = frame["maybe_x"].astype(np.float64)
    frame["maybe_s"] = frame["maybe_s"].astype(object)
    if draw(st.booleans()):  # a nullable field with a default may be absent
        frame = frame.drop(columns=["maybe_s"])
    if draw(st.booleans()):
        frame["at"] = pd.array(draw(rows(st.one_of(st.none(), INT64), min_size=n, max_size=n)), dtype="Int64")
    return frame


@settings(max_examples=300, deadline=None)
@given(flat_frames(), st.binary(max_size=5))
def test_flat_frames_encode_as_fastavro_writes_them(frame, header):
    values = encode_frame(SCHEMA, frame, header)
    assert values is not None  # the frame is inside the vectorised subset: it must not fall back
    assert values == fastavro_bytes(frame, header)


def one_row(**changes) -> pd.DataFrame:
    row = {"id": "a", "x1": 1.5, "x2": 2.0, "small": 0.25, "count": 7, "code": -3, "flag": True, "blob": b"\x00"}
    row |= {"maybe_x": None, "maybe_n": None, "maybe_s": "s", "x3": -0.0}
    frame = pd.DataFrame([row | changes])
    return frame.astype({c: t for c, t in {"maybe_n": "Int64", "maybe_x": float}.items() if c not in changes})


@pytest.mark.parametrize(
    "frame",
    [
        one_row(x1=float("nan")),  # a null where the schema has none
        one_row(x3=None),
        one_row(count=1.5),  # a float for a long
        one_row(code=2**31),  # past int's range
        one_row(id=7),  # a number for a string
        one_row(id="\ud800"),  # not encodable as UTF-8
        one_row(flag=1),  # an int for a boolean
        one_row(small=1e300),  # past float's range
        one_row().drop(columns=["x2"]),  # a required field absent
    ],
)
def test_frames_outside_the_subset_go_to_fastavro_which_decides(frame):
    assert encode_frame(SCHEMA, frame) is None
    writer = AvroWriter(9, SCHEMA)
    try:
        expected = fastavro_bytes(frame, wire(9, b""))
    except (ValueError, TypeError, OverflowError, UnicodeEncodeError, AttributeError) as exc:
        with pytest.raises(type(exc)):
            writer.encode_frame(frame)
    else:
        assert writer.encode_frame(frame) == expected


def test_schemas_outside_the_subset_are_left_to_fastavro():
    nested = {
        "type": "record",
        "name": "Outer",
        "fields": [
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
            {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [{"name": "v", "type": "double"}]}},
        ],
    }
    parsed = fastavro.parse_schema(nested)
    frame = pd.DataFrame({"kind": ["B"], "inner": [{"v": 1.0}]})
    assert encode_frame(parsed, frame) is None
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, parsed, {"kind": "B", "inner": {"v": 1.0}})
    assert AvroWriter(3, parsed).encode_frame(frame) == [wire(3, expected.getvalue())]


def test_the_writer_frames_each_value_in_the_wire_format():
    frame = one_row()
    (value,) = AvroWriter(258, SCHEMA).encode_frame(frame)
    assert value[:5] == bytes([0, 0, 0, 1, 2])
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), SCHEMA, SCHEMA)
    assert record["id"] == "a" and record["x1"] == 1.5 and record["maybe_s"] == "s" and record["maybe_x"] is None
    assert json.dumps(record["count"]) == "7"
