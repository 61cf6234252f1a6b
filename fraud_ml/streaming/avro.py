"""Avro message bodies in the Confluent wire format, decoded a column at a time.

A value is magic byte ``0``, the writer schema's id (4 bytes, big-endian), then the Avro binary
body. Writer schemas come from a Confluent-compatible schema registry
(``stream.message.schema_registry_url``, ``GET /schemas/ids/<id>``; basic auth from the
``SCHEMA_REGISTRY_USERNAME`` / ``SCHEMA_REGISTRY_PASSWORD`` environment variables) or, without a
registry, from pinned ``.avsc`` files (``stream.message.avro_schemas``: schema id -> file).

The values of one schema id are decoded together: :class:`ColumnDecoder` walks the schema's fields
once per batch with a cursor per message (numpy gathers for doubles, vectorised varints for
ints, longs, lengths and union branches), so the cost per message is a few array elements, not
a Python call per field. Schemas holding arrays or maps are read one message at a time with
fastavro. Whatever the bytes, each value ends as a row or a reason: ``not Avro`` (no magic
byte), ``unknown schema id``, ``undecodable Avro body`` (truncated, trailing bytes, bad varint,
union branch or UTF-8) or ``incompatible schema`` (the writer schema lacks a field we score, or
types it as something we cannot read as the number / text we need), naming the producer's field.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from fraud_ml.errors import FraudMLError
from fraud_ml.streaming.avro_encoder import encode_frame

log = logging.getLogger(__name__)

MAGIC = 0
HEADER_BYTES = 5
PADDING = 16  # zero bytes after a batch's joined bodies
_VARINT_BYTES = 10
_VARINT_STEPS = np.arange(_VARINT_BYTES)
_VARINT_SHIFTS = (7 * _VARINT_STEPS).astype(np.uint64)
NUMERIC = ("int", "long", "float", "double")
INTEGRAL = ("int", "long")
AUTH_ENV = ("SCHEMA_REGISTRY_USERNAME", "SCHEMA_REGISTRY_PASSWORD")


class SchemaRegistryError(FraudMLError):
    """The schema registry could not be asked (down, refused our credentials, answered 5xx)."""


# ----------------------------------------------------------------------------- schema sources
class RegistryClient:
    """Writer schemas by id from a Confluent-compatible registry, each fetched once per process."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s
        user, password = (os.environ.get(name, "") for name in AUTH_ENV)
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        self._cache: dict[int, str | None] = {}

    def schema_text(self, schema_id: int) -> str | None:
        """The schema's JSON text, or None when the registry holds no schema with this id."""
        if schema_id not in self._cache:
            request = urllib.request.Request(f"{self.url}/schemas/ids/{schema_id}")
            if self._auth:
                request.add_header("Authorization", self._auth)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    body = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise SchemaRegistryError(
                        f"schema registry {self.url} answered {exc.code} for schema id {schema_id}"
                    ) from None
                body = None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                raise SchemaRegistryError(f"schema registry {self.url} unreachable: {exc}") from None
            if body is not None and body.get("schemaType", "AVRO") != "AVRO":
                body = {"schema": None, "type": body.get("schemaType")}
            self._cache[schema_id] = None if body is None else body.get("schema")
        return self._cache[schema_id]


@dataclass(frozen=True)
class AvroSource:
    """Where writer schemas come from: pinned texts by id, else a registry (plain values, shipped as JSON)."""

    pinned: tuple[tuple[int, str], ...] = ()
    registry_url: str = ""

    def as_mapping(self) -> dict[str, Any]:
        return {"pinned": [list(p) for p in self.pinned], "registry_url": self.registry_url}

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "AvroSource":
        pinned = tuple((int(i), str(t)) for i, t in values.get("pinned") or ())
        return cls(pinned, str(values.get("registry_url") or ""))


@dataclass(frozen=True)
class FieldPlan:
    """How one of our fields is read from a writer schema: its position among the top-level fields."""

    index: int  # top-level field number in the writer schema
    kind: str  # number | integer | string
    micros: bool = False  # timestamp-micros: divide by 1,000 for epoch ms


class SchemaBook:
    """Writer schemas by id (pinned, then the registry), each compiled once into a :class:`ColumnDecoder`."""

    def __init__(self, source: AvroSource) -> None:
        self.pinned = dict(source.pinned)
        self.registry = RegistryClient(source.registry_url) if source.registry_url else None
        self._decoders: dict[int, ColumnDecoder | str] = {}

    def decoder(self, schema_id: int) -> "ColumnDecoder | str":
        """The decoder of ``schema_id``, or the reason its messages are refused."""
        if schema_id not in self._decoders:
            text = self.pinned.get(schema_id)
            if text is None and self.registry is not None:
                text = self.registry.schema_text(schema_id)
            if text is None:
                where = "the registry" if self.registry is not None else "the pinned schemas"
                self._decoders[schema_id] = f"unknown schema id {schema_id} (not in {where})"
            else:
                self._decoders[schema_id] = compile_schema(schema_id, text)
        return self._decoders[schema_id]


@functools.lru_cache(maxsize=8)
def schema_book(source: AvroSource) -> SchemaBook:
    """One book per process and source (a Python worker keeps its schemas across batches)."""
    return SchemaBook(source)


def compile_schema(schema_id: int, text: str) -> "ColumnDecoder | str":
    """A decoder for a writer schema's JSON text, or why it cannot be one."""
    import fastavro
    from fastavro.schema import SchemaParseException, UnknownType

    try:
        parsed = fastavro.parse_schema(json.loads(text))
    except (ValueError, TypeError, KeyError, SchemaParseException, UnknownType) as exc:
        return f"incompatible schema id {schema_id}: not a valid Avro schema ({exc})"
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return f"incompatible schema id {schema_id}: not a record"
    return ColumnDecoder(schema_id, parsed)


# ----------------------------------------------------------------------------- the decoder
def _branches(schema: Any) -> list:
    return schema if isinstance(schema, list) else [schema]


def _type_name(schema: Any) -> str:
    return schema if isinstance(schema, str) else schema.get("type") if isinstance(schema, dict) else "union"


def _has_blocks(schema: Any, named: dict) -> bool:
    """Whether a schema holds arrays or maps (block-encoded: read per message)."""
    seen, stack = set(), [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, list):
            stack.extend(s)
        elif isinstance(s, str):
            if s in named and s not in seen:
                seen.add(s)
                stack.append(named[s])
        elif isinstance(s, dict):
            kind = s.get("type")
            if kind in ("array", "map"):
                return True
            if kind == "record":
                stack.extend(f["type"] for f in s["fields"])
            elif isinstance(kind, (dict, list)):
                stack.append(kind)
    return False


def _named_types(schema: Any) -> dict:
    """Named types (records, enums, fixed) of a parsed schema by full name."""
    named, stack = {}, [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, list):
            stack.extend(s)
        elif isinstance(s, dict):
            if s.get("type") in ("record", "enum", "fixed") and "name" in s:
                named[s["name"]] = s
            if s.get("type") == "record":
                stack.extend(f["type"] for f in s["fields"])
            elif s.get("type") in ("array",):
                stack.append(s["items"])
            elif s.get("type") in ("map",):
                stack.append(s["values"])
            elif isinstance(s.get("type"), (dict, list)):
                stack.append(s["type"])
    return named


def _all(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


def _empty_column(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) for ``n`` rows of a number (float64), integer (int64) or string (object) field."""
    dtype = {"number": np.float64, "integer": np.int64}.get(kind, object)
    values = np.full(n, None, dtype=object) if dtype is object else np.zeros(n, dtype=dtype)
    return values, np.zeros(n, dtype=bool)


class _Cursor:
    """Per-message read positions over one buffer holding the bodies of a batch, end to end."""

    def __init__(self, raw: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        self.raw = raw  # ends with PADDING zero bytes: a gather past the last body's end reads zeros
        self.buf = np.frombuffer(raw, np.uint8)
        self.end = np.asarray(ends, dtype=np.int64)
        self.pos = np.array(starts, dtype=np.int64)
        self.bad = np.zeros(len(self.end), dtype=bool)  # undecodable (the reason is the same)
        self.why = np.full(len(self.end), None, dtype=object)

    @classmethod
    def of(cls, bodies: Sequence[bytes], skip: int = 0) -> "_Cursor":
        """A cursor over ``bodies``, each read from its byte ``skip`` (e.g. past a wire-format header)."""
        lengths = np.fromiter(map(len, bodies), np.int64, len(bodies))
        end = np.cumsum(lengths)
        return cls(b"".join(bodies) + bytes(PADDING), end - lengths + skip, end)

    def fail(self, rows: np.ndarray, why: str) -> None:
        fresh = rows[~self.bad[rows]]
        self.why[fresh] = why
        self.bad[rows] = True

    def check(self, rows: np.ndarray, what: str) -> None:
        over = rows[self.pos[rows] > self.end[rows]]
        if over.size:
            self.fail(over, f"truncated in {what}")

    def varint(self, rows: np.ndarray, what: str) -> np.ndarray:
        """Zigzag-decoded int64 at the rows' positions (moved past it); bad varints fail their rows."""
        p, limit = self.pos[rows], len(self.buf) - 1
        first = self.buf[np.minimum(p, limit)]
        if (first < 0x80).all():  # one byte each: union branches, short lengths, small ints (most of them)
            size, value = 1, first.astype(np.uint64)
        else:  # the ten bytes a varint may take, gathered at once: ~10 array operations, not ~60 in a loop
            block = self.buf[np.minimum(p[:, None] + _VARINT_STEPS, limit)]
            last = block < 0x80
            ends = last.any(axis=1)
            size = np.where(ends, last.argmax(axis=1) + 1, _VARINT_BYTES)
            longest = int(size.max())
            payload = (block[:, :longest] & 0x7F).astype(np.uint64) << _VARINT_SHIFTS[:longest]
            payload[_VARINT_STEPS[:longest] >= size[:, None]] = 0
            value = payload.sum(axis=1, dtype=np.uint64)  # the 7-bit groups do not overlap: sum = or
            if not ends.all():
                self.fail(rows[~ends], f"bad varint in {what}")
        self.pos[rows] = p + size
        self.check(rows, what)
        return (value >> np.uint64(1)).astype(np.int64) ^ -((value & np.uint64(1)).astype(np.int64))

    def branches(self, rows: np.ndarray, union: list, what: str) -> list[tuple[Any, np.ndarray]]:
        """A union's (branch schema, rows that took it), read from each row's branch index."""
        branch = self.varint(rows, what)
        bad = rows[(branch < 0) | (branch >= len(union))]
        if bad.size:
            self.fail(bad, f"union branch out of range in {what}")
        return [(sub, rows[branch == b]) for b, sub in enumerate(union)]

    def fixed(self, rows: np.ndarray, size: int, what: str) -> np.ndarray:
        """The ``size`` bytes at the rows' positions as an (n, size) uint8 array (moved past them)."""
        p = self.pos[rows]
        out = self.buf[np.minimum(p[:, None] + np.arange(size), len(self.buf) - 1)]
        self.pos[rows] = p + size
        self.check(rows, what)
        return out

    def span(self, rows: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of the length-prefixed bytes at the rows' positions (moved past them)."""
        length = self.varint(rows, what)
        start = self.pos[rows].copy()
        room = np.maximum(self.end[rows] - start, 0)
        if (length < 0).any():
            self.fail(rows[length < 0], f"negative length in {what}")
        if (length > room).any():  # also keeps a huge length from overflowing the position
            self.fail(rows[length > room], f"truncated in {what}")
        length = np.clip(length, 0, room)
        self.pos[rows] = start + length
        return start, start + length


class ColumnDecoder:
    """Decodes the bodies of one writer schema a field at a time; keeps the top-level fields we ask for."""

    def __init__(self, schema_id: int, parsed: dict) -> None:
        self.schema_id, self.parsed = schema_id, parsed
        self.named = _named_types(parsed)
        self.fields = [f["name"] for f in parsed["fields"]]
        self.per_message = _has_blocks(parsed, self.named)
        self._raw_schema = None  # per-message reading: the schema without logical types (raw ints)
        # Top-level fields, consecutive plain doubles (the 30 features of the usual schema) as one tuple.
        self.groups: list = []
        for f in parsed["fields"]:
            if self._resolve(f["type"]) == "double":
                if self.groups and isinstance(self.groups[-1], tuple):
                    self.groups[-1] = (*self.groups[-1], f["name"])
                else:
                    self.groups.append((f["name"],))
            else:
                self.groups.append(f)

    def _doubles(self, c: "_Cursor", rows: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """(n, len(names)) float64 of a run of double fields; a body that ends inside fails naming the field."""
        start, failed_before = c.pos[rows].copy(), c.bad[rows].copy()
        block = c.fixed(rows, 8 * len(names), names[0]).copy().view("<f8").reshape(len(rows), len(names))
        ends_inside = (start + 8 * len(names) > c.end[rows]) & ~failed_before
        over, start = rows[ends_inside], start[ends_inside]
        if over.size:
            c.bad[over] = False  # name the field where each body ends instead of the run's first
            c.why[over] = None
            at = np.clip((c.end[over] - start) // 8, 0, len(names) - 1)
            for field_index in np.unique(at):
                c.fail(over[at == field_index], f"truncated in {names[field_index]}")
        return block

    def field_types(self) -> dict[str, Any]:
        return {f["name"]: f["type"] for f in self.parsed["fields"]}

    def decode(
        self, bodies: Sequence[bytes], wanted: dict[str, str], skip: int = 0
    ) -> tuple[dict[str, tuple], np.ndarray]:
        """``{field: (values, present)}`` of the ``wanted`` top-level fields (name -> number | integer |
        string) and, per body, None or why it is undecodable; the first ``skip`` bytes of each are not Avro."""
        cursor = _Cursor.of(bodies, skip)
        return self.decode_spans(cursor.raw, cursor.pos, cursor.end, wanted)

    def decode_spans(
        self, raw: bytes, starts: np.ndarray, ends: np.ndarray, wanted: dict[str, str]
    ) -> tuple[dict[str, tuple], np.ndarray]:
        """:meth:`decode` of the bodies ``raw[starts[i]:ends[i]]``; ``raw`` ends with :data:`PADDING` zero bytes."""
        if self.per_message:
            return self._decode_per_message([raw[a:b] for a, b in zip(starts.tolist(), ends.tolist())], wanted)
        cursor, n = _Cursor(raw, starts, ends), len(ends)
        out: dict[str, tuple] = {}
        rows = np.arange(n)
        for group in self.groups:
            if isinstance(group, tuple):  # a run of doubles: one gather for all of them
                block = self._doubles(cursor, rows, group)
                for j, name in enumerate(group):
                    if name in wanted:  # a number: incompatibility() keeps doubles from integer or text fields
                        out[name] = (block[:, j], _all(n))
                continue
            f = group
            kind = wanted.get(f["name"])
            if kind is None:
                self._skip(cursor, rows, f["type"], f["name"])
            else:
                values, present = _empty_column(kind, n)
                self._read(cursor, rows, f["type"], f["name"], kind, values, present)
                out[f["name"]] = (values, present)
        left = np.flatnonzero(~cursor.bad & (cursor.pos != cursor.end))
        cursor.fail(left, "trailing bytes after the record")
        return out, cursor.why

    # --- one schema node over a set of rows
    def _resolve(self, schema: Any) -> Any:
        return self.named.get(schema, schema) if isinstance(schema, str) else schema

    def _read(self, c: _Cursor, rows, schema, name, kind, values, present) -> None:
        """Read a wanted field: a number, an integer or a string, possibly in a union with null."""
        schema = self._resolve(schema)
        if isinstance(schema, list):
            for sub, sub_rows in c.branches(rows, schema, name):
                self._read(c, sub_rows, sub, name, kind, values, present)
            return
        if not rows.size:
            return
        t = _type_name(schema)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if t == "null":
            return
        if t == "double":
            values[rows] = c.fixed(rows, 8, name).copy().view("<f8").ravel()
        elif t == "float":
            values[rows] = c.fixed(rows, 4, name).copy().view("<f4").ravel().astype(np.float64)
        elif t in INTEGRAL:
            v = c.varint(rows, name)
            values[rows] = v // 1000 if logical in ("timestamp-micros", "local-timestamp-micros") else v
        elif t == "string":
            start, end = c.span(rows, name)
            raw, spans = c.raw, list(zip(start.tolist(), end.tolist()))
            try:
                values[rows] = np.array([raw[a:b].decode("utf-8") for a, b in spans], dtype=object)
            except UnicodeDecodeError:  # find the rows that are not UTF-8, one by one
                for i, (a, b) in zip(rows.tolist(), spans):
                    try:
                        values[i] = raw[a:b].decode("utf-8")
                    except UnicodeDecodeError:
                        c.fail(np.array([i]), f"{name} is not UTF-8")
        else:  # compile-time checks keep other types away from wanted fields
            raise AssertionError(f"{name}: {t} is not a wanted type")
        present[rows] = True

    def _skip(self, c: _Cursor, rows, schema, name) -> None:
        schema = self._resolve(schema)
        if not rows.size:
            return
        if isinstance(schema, list):
            for sub, sub_rows in c.branches(rows, schema, name):
                self._skip(c, sub_rows, sub, name)
            return
        t = _type_name(schema)
        if t == "null":
            return
        if t in ("int", "long", "enum"):
            c.varint(rows, name)
        elif t == "boolean":
            c.fixed(rows, 1, name)
        elif t == "float":
            c.fixed(rows, 4, name)
        elif t == "double":
            c.fixed(rows, 8, name)
        elif t == "fixed":
            c.fixed(rows, int(schema["size"]), name)
        elif t in ("string", "bytes"):
            c.span(rows, name)
        elif t == "record":
            for f in schema["fields"]:
                self._skip(c, rows, f["type"], f"{name}.{f['name']}")
        elif isinstance(t, (dict, list)):
            self._skip(c, rows, t, name)
        else:
            raise AssertionError(f"{name}: {t} is read per message")

    def _decode_per_message(self, bodies, wanted) -> tuple[dict[str, tuple], np.ndarray]:
        import fastavro

        n = len(bodies)
        why = np.full(n, None, dtype=object)
        out = {f: _empty_column(kind, n) for f, kind in wanted.items()}
        micros = {
            f["name"]
            for f in self.parsed["fields"]
            for s in _branches(self._resolve(f["type"]))
            if isinstance(s, dict) and s.get("logicalType") in ("timestamp-micros", "local-timestamp-micros")
        }
        if self._raw_schema is None:
            self._raw_schema = fastavro.parse_schema(without_logical_types(self.parsed))
        for i, body in enumerate(bodies):
            stream = io.BytesIO(body)
            try:
                record = fastavro.schemaless_reader(stream, self._raw_schema, None)
            except (EOFError, ValueError, IndexError, KeyError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
                why[i] = f"{type(exc).__name__}"
                continue
            if stream.tell() != len(body):
                why[i] = "trailing bytes after the record"
                continue
            for f in wanted:
                value = record.get(f)
                if value is None:
                    continue
                if f in micros:
                    value //= 1000
                out[f][0][i], out[f][1][i] = value, True
        return out, why


def without_logical_types(schema: Any) -> Any:
    """A copy of a schema with ``logicalType`` dropped everywhere (and fastavro's parse marks), so it reads
    the raw ints, strings and bytes the vectorised path reads."""
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k != "logicalType" and not k.startswith("__")}
    for key in ("type", "items", "values"):
        if isinstance(out.get(key), (dict, list)):
            out[key] = without_logical_types(out[key])
    if "fields" in out:
        out["fields"] = [{**f, "type": without_logical_types(f["type"])} for f in out["fields"]]
    return out


# ----------------------------------------------------------------------------- wire format
@dataclass(frozen=True)
class WireBatch:
    """A batch of values joined into one buffer: per value its schema id (-1 = not the Confluent wire
    format), where it starts in ``raw`` and its length (0 for None)."""

    raw: bytes  # the values end to end, then PADDING zero bytes
    schema_ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, values: Sequence[bytes | None]) -> "WireBatch":
        n = len(values)
        lengths = np.fromiter((len(v) if v else 0 for v in values), np.int64, n)
        raw = b"".join(v or b"" for v in values) + bytes(PADDING)
        starts = np.cumsum(lengths) - lengths
        header = np.frombuffer(raw, np.uint8)[starts[:, None] + np.arange(HEADER_BYTES)].astype(np.int64)
        ids = (header[:, 1] << 24) | (header[:, 2] << 16) | (header[:, 3] << 8) | header[:, 4]
        return cls(raw, np.where((lengths >= HEADER_BYTES) & (header[:, 0] == MAGIC), ids, -1), starts, lengths)

    def decode(
        self, decoder: ColumnDecoder, rows: np.ndarray, wanted: dict[str, str]
    ) -> tuple[dict[str, tuple], np.ndarray]:
        """:meth:`ColumnDecoder.decode` of the bodies (past the header) of the values at ``rows``."""
        starts = self.starts[rows]
        return decoder.decode_spans(self.raw, starts + HEADER_BYTES, starts + self.lengths[rows], wanted)


def wire(schema_id: int, body: bytes) -> bytes:
    """A Confluent wire-format value: magic byte, schema id, Avro body."""
    return bytes([MAGIC]) + int(schema_id).to_bytes(4, "big") + body


def incompatibility(decoder: ColumnDecoder, needed: dict[str, tuple[str, bool]]) -> str | None:
    """Why a writer schema cannot give us ``needed`` (producer field -> (number | integer | string,
    required)), or None; a union with null is fine (a null is then refused per message)."""
    types = decoder.field_types()
    problems = []
    for field, (kind, required) in needed.items():
        if field not in types:
            if required:
                problems.append(f"no field {field}")
            continue
        readable = NUMERIC if kind == "number" else INTEGRAL if kind == "integer" else ("string",)
        branches = [_type_name(decoder._resolve(b)) for b in _branches(decoder._resolve(types[field]))]
        odd = [b for b in branches if b != "null" and b not in readable]
        if odd or branches == ["null"]:
            problems.append(f"{field} is {'/'.join(map(str, branches))}, expected {kind}")
    if not problems:
        return None
    return f"incompatible schema id {decoder.schema_id}: " + "; ".join(problems)


@dataclass(frozen=True)
class AvroWriter:
    """Encodes records (dicts under the producer's field names) with one writer schema, wire-framed."""

    schema_id: int
    parsed: Any

    def encode_frame(self, frame: pd.DataFrame) -> list[bytes]:
        """The wire values of a frame's rows (columns under the schema's field names): a column at a
        time for a flat record schema (:mod:`fraud_ml.streaming.avro_encoder`), else record by record."""
        values = encode_frame(self.parsed, frame, wire(self.schema_id, b""))
        if values is not None:
            return values
        return self.encode(frame.astype(object).where(frame.notna(), None).to_dict("records"))

    def encode(self, records: Sequence[dict]) -> list[bytes]:
        """The wire values of records, one fastavro write each."""
        import fastavro

        out = []
        for record in records:
            stream = io.BytesIO()
            fastavro.schemaless_writer(stream, self.parsed, record)
            out.append(wire(self.schema_id, stream.getvalue()))
        return out


def avro_writer(source: AvroSource, schema_id: int) -> AvroWriter:
    """The writer of schema ``schema_id`` (pinned, else from the registry); FraudMLError if unknown."""
    import fastavro

    text = dict(source.pinned).get(int(schema_id))
    if text is None and source.registry_url:
        text = RegistryClient(source.registry_url).schema_text(int(schema_id))
    if text is None:
        raise FraudMLError(f"no Avro schema with id {schema_id} to write with (stream.message.avro_writer_schema_id)")
    return AvroWriter(int(schema_id), fastavro.parse_schema(json.loads(text)))
