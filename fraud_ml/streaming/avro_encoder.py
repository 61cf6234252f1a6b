"""Avro bodies of a flat record schema encoded a column at a time: the producer's side of ``avro.py``.

A record whose fields are primitives (``double``, ``float``, ``long``, ``int``, ``boolean``,
``string``, ``bytes``, ``null``) or unions of ``null`` with one of them is written as numpy
arrays: doubles as 8 little-endian bytes, ints and longs as zigzag varints, strings as a varint
length and their UTF-8 bytes, a union as its branch index then the value. Each field gives per
row a run of bytes; the runs are scattered into one buffer, row after row, and cut into one
value per row. :func:`encode_frame` returns None where a schema or a column falls outside what
it writes exactly as fastavro does (nested records, enums, most logical types, a null where the
schema has none, a float for an int...): the caller then writes those records with fastavro,
which also raises its own error for a record the schema refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_FIXED = {"double": "<f8", "float": "<f4"}
_INTEGERS = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}
_TIMESTAMPS = ("timestamp-millis", "timestamp-micros")  # on a long, an int passes through fastavro as is
_VARINT_SHIFTS = (7 * np.arange(10)).astype(np.uint64)


@dataclass(frozen=True)
class _Runs:
    """One field part's bytes for every row, end to end (``data``), and each row's share (``lengths``)."""

    data: np.ndarray  # uint8
    lengths: np.ndarray  # int64, one per row

    @classmethod
    def of_matrix(cls, matrix: np.ndarray) -> "_Runs":
        return cls(matrix.ravel(), np.full(len(matrix), matrix.shape[1], np.int64))


def _primitive(schema: Any) -> str | None:
    """The primitive type a field schema names, or None for anything else (named, complex, logical)."""
    if isinstance(schema, str):
        return schema if schema in (*_FIXED, *_INTEGERS, "boolean", "string", "bytes", "null") else None
    if isinstance(schema, dict) and set(schema) <= {"type", "logicalType"} and isinstance(schema["type"], str):
        logical = schema.get("logicalType")
        if logical is None or (schema["type"] == "long" and logical in _TIMESTAMPS):
            return _primitive(schema["type"])
    return None


def _field_plan(field: dict) -> tuple[str, int | None, int] | None:
    """(primitive type, its union branch or None, the null branch or -1) of a field, None if not flat."""
    schema = field["type"]
    if not isinstance(schema, list):
        kind = _primitive(schema)
        return None if kind is None else (kind, None, -1)
    kinds = [_primitive(s) for s in schema]
    if None in kinds or len(kinds) != 2 or "null" not in kinds or kinds.count("null") != 1:
        return None
    value_branch = 1 - kinds.index("null")
    return kinds[value_branch], value_branch, kinds.index("null")


def _varints(values: np.ndarray) -> _Runs:
    """Zigzag varints of int64 values (Avro's int and long)."""
    zigzag = ((values << 1) ^ (values >> 63)).view(np.uint64)
    groups = zigzag[:, None] >> _VARINT_SHIFTS
    lengths = np.maximum((groups != 0).sum(axis=1), 1)
    keep = np.arange(10) < lengths[:, None]
    matrix = (groups & 0x7F).astype(np.uint8)
    matrix[np.arange(10) < lengths[:, None] - 1] |= 0x80
    return _Runs(matrix[keep], lengths.astype(np.int64))


def _masked(matrix: np.ndarray, present: np.ndarray) -> _Runs:
    """The rows of a fixed-width (n, width) byte matrix, kept only at ``present`` rows."""
    return _Runs(matrix[present].ravel(), np.where(present, matrix.shape[1], 0).astype(np.int64))


def _value_runs(kind: str, column: pd.Series, present: np.ndarray) -> list[_Runs] | None:
    """The runs of a column's present values as ``kind``, or None where fastavro must decide."""
    n = len(column)
    if kind == "null" or not present.any():
        return [_Runs(np.empty(0, np.uint8), np.zeros(n, np.int64))]
    dtype = column.dtype
    if kind in _FIXED:
        if not (pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)):
            return None
        wide = column.to_numpy(dtype=np.float64, na_value=0.0)
        if kind == "float" and (np.abs(wide[np.isfinite(wide)]) > np.finfo(np.float32).max).any():
            return None  # past float32's range: fastavro decides (inf or an error)
        values = wide.astype(_FIXED[kind])
        return [_masked(values.view(np.uint8).reshape(n, values.itemsize), present)]
    if kind in _INTEGERS:
        if not pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            return None
        wide = column.to_numpy(dtype=object, na_value=0)
        low, high = _INTEGERS[kind]
        if len(wide) and (min(wide) < low or max(wide) > high):
            return None
        runs = _varints(wide.astype(np.int64)[present])
        lengths = np.zeros(n, np.int64)
        lengths[present] = runs.lengths
        return [_Runs(runs.data, lengths)]
    if kind == "boolean":
        if not pd.api.types.is_bool_dtype(dtype):
            return None
        values = column.to_numpy(dtype=bool, na_value=False).astype(np.uint8)
        return [_Runs(values[present], present.astype(np.int64))]
    # string, bytes: a varint length, then the bytes
    values = column.to_numpy(dtype=object)[present]
    wanted = str if kind == "string" else bytes
    if not all(type(v) is wanted for v in values):
        return None
    try:
        encoded = [v.encode("utf-8") for v in values] if kind == "string" else list(values)
    except UnicodeEncodeError:
        return None
    sizes = np.fromiter(map(len, encoded), np.int64, len(encoded))
    prefix = _varints(sizes)
    prefix_lengths, body_lengths = np.zeros(n, np.int64), np.zeros(n, np.int64)
    prefix_lengths[present], body_lengths[present] = prefix.lengths, sizes
    return [
        _Runs(prefix.data, prefix_lengths),
        _Runs(np.frombuffer(b"".join(encoded), np.uint8), body_lengths),
    ]


def _field_runs(field: dict, frame: pd.DataFrame) -> list[_Runs] | None:
    plan = _field_plan(field)
    if plan is None:
        return None
    kind, value_branch, null_branch = plan
    n = len(frame)
    if field["name"] not in frame.columns:
        defaults_to_null = "default" in field and field["default"] is None
        null_by_default = value_branch is not None and null_branch == 0 and defaults_to_null
        if kind != "null" and not null_by_default:
            return None  # fastavro writes another default or refuses: let it
        column, present = pd.Series([None] * n, dtype=object), np.zeros(n, dtype=bool)
    else:
        column = frame[field["name"]]
        present = column.notna().to_numpy()
    if value_branch is None and (present.any() if kind == "null" else not present.all()):
        return None  # a missing value where the schema allows none (or a value where it allows only null)
    values = _value_runs(kind, column, present)
    if values is None or value_branch is None:
        return values
    branch = np.where(present, 2 * value_branch, 2 * null_branch).astype(np.uint8)  # zigzag of 0 or 1
    return [_Runs(branch, np.ones(n, np.int64)), *values]


def _interleave(parts: list[_Runs], n: int) -> list[bytes]:
    """Row i's bytes: part after part, each part's i-th run."""
    row_lengths = np.sum([p.lengths for p in parts], axis=0) if parts else np.zeros(n, np.int64)
    row_starts = np.cumsum(row_lengths) - row_lengths
    out = np.empty(int(row_lengths.sum()), np.uint8)
    at = row_starts.copy()
    for part in parts:
        sources = np.cumsum(part.lengths) - part.lengths
        out[np.repeat(at - sources, part.lengths) + np.arange(len(part.data))] = part.data
        at += part.lengths
    raw = out.tobytes()
    return [raw[s:e] for s, e in zip(row_starts.tolist(), (row_starts + row_lengths).tolist())]


def encode_frame(parsed: dict, frame: pd.DataFrame, header: bytes = b"") -> list[bytes] | None:
    """``header`` + the Avro body of each row of ``frame`` (columns under the schema's field names), or
    None where the schema or a column is outside the vectorised subset."""
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return None
    n = len(frame)
    if n == 0:
        return []
    parts = [_Runs.of_matrix(np.tile(np.frombuffer(header, np.uint8), (n, 1)))] if header else []
    group: list[str] = []  # consecutive required doubles (the features), read from the frame at once
    for field in [*parsed["fields"], None]:
        if field is not None and _is_plain_double(field, frame):
            group.append(field["name"])
            continue
        if group:
            values = frame[group].to_numpy(dtype=np.float64)
            if np.isnan(values).any():
                return None  # a missing value where the schema allows none: fastavro's error
            parts.append(_Runs.of_matrix(np.ascontiguousarray(values, dtype="<f8").view(np.uint8)))
            group = []
        if field is not None:
            runs = _field_runs(field, frame)
            if runs is None:
                return None
            parts.extend(runs)
    return _interleave(parts, n)


def _is_plain_double(field: dict, frame: pd.DataFrame) -> bool:
    """A required double held in a numeric column of the frame."""
    if field["name"] not in frame.columns or _field_plan(field) != ("double", None, -1):
        return False
    dtype = frame.dtypes[field["name"]]
    return isinstance(dtype, np.dtype) and dtype.kind in "fiu"
