"""Decode and validate transaction messages (Kafka values) in Python: total over any bytes.

This runs on the Python workers inside the scoring function, so a micro-batch is
parsed, checked and scored in one step. Pure functions over lists of bytes: no Spark
needed to test them. Whatever bytes arrive, :func:`decode_messages` returns exactly
one row per value: either every field, or a ``reason`` (never both, never neither),
and it raises for no single value (tests/streaming/test_messages_fuzz.py fuzzes this).

A message is a JSON object with ``transaction_id`` (string), ``Time``, ``V1``..``V28``,
``Amount`` (numbers), and optional ``event_time`` (epoch ms, integer), ``label``
(integer 0 or 1) and ``source`` (string). Unknown fields are ignored; a repeated key
takes its last value (as in Python's and msgspec's JSON readers). First match wins,
in this order:

1. ``empty value``; ``oversized message``;
2. ``invalid JSON: not UTF-8``, ``invalid JSON`` (syntax), ``invalid JSON: not an object``,
   ``nesting too deep``, ``wrong field type``;
3. ``missing field: transaction_id``, ``missing or null field: <features>``;
4. ``invalid transaction_id`` / ``invalid source`` (length, characters);
5. ``non-finite value in``, then the range checks of Amount, Time, V1..V28, label
   and event_time (bounds in ``stream.validation``).

Flat messages take the fast path (``msgspec`` against a typed struct, ~3.5 us each);
a message it refuses, or one with nested brackets, is re-read with ``json`` only to
name the problem precisely (``NaN`` / ``Infinity`` tokens read as non-finite numbers).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import operator
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional, Sequence

import msgspec
import numpy as np
import pandas as pd

from fraud_ml.schema import (
    FEATURES,
    ID_COL,
    MESSAGE_EVENT_TIME,
    MESSAGE_LABEL,
    PCA_FEATURES,
    SOURCE_COL,
)
from fraud_ml.streaming.contract import KAFKA_KEY, NATIVE, MessageContract

if TYPE_CHECKING:
    from fraud_ml.config import Config

REASON = "reason"
OPTIONAL_FIELDS = (MESSAGE_EVENT_TIME, MESSAGE_LABEL, SOURCE_COL)

INVALID_JSON = "invalid JSON"
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
_PCA_INDEX = np.array([_FEATURE_INDEX[c] for c in PCA_FEATURES])
_TIME, _AMOUNT = _FEATURE_INDEX["Time"], _FEATURE_INDEX["Amount"]
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class ValidationLimits:
    """Bounds beyond which a message is quarantined instead of scored (``stream.validation``)."""

    max_message_bytes: int
    max_nesting_depth: int
    max_id_length: int
    id_pattern: str
    max_source_length: int
    source_pattern: str
    max_time: float
    max_amount: float
    max_abs_feature: float
    min_event_time_ms: int
    max_event_time_ahead_ms: int

    @classmethod
    def from_config(cls, cfg: "Config") -> "ValidationLimits":
        """The limits configured under ``stream.validation``."""
        v = cfg.get("stream.validation")
        earliest = datetime.fromisoformat(str(v["min_event_time"]).replace("Z", "+00:00"))
        return cls(
            max_message_bytes=int(v["max_message_bytes"]),
            max_nesting_depth=int(v["max_nesting_depth"]),
            max_id_length=int(v["max_id_length"]),
            id_pattern=str(v["id_pattern"]),
            max_source_length=int(v["max_source_length"]),
            source_pattern=str(v["source_pattern"]),
            max_time=float(v["max_time"]),
            max_amount=float(v["max_amount"]),
            max_abs_feature=float(v["max_abs_feature"]),
            min_event_time_ms=int(earliest.timestamp() * 1000),
            max_event_time_ahead_ms=int(float(v["max_event_time_ahead_minutes"]) * 60_000),
        )


_FIELD_TYPES = {
    ID_COL: (str, ...),
    **{c: (float, ...) for c in FEATURES},
    MESSAGE_EVENT_TIME: (Optional[int], None),
    MESSAGE_LABEL: (Optional[int], None),
    SOURCE_COL: (Optional[str], None),
}
_features_of = operator.attrgetter(*FEATURES)


@functools.lru_cache(maxsize=8)
def _fast_decoder(contract: MessageContract):
    """The strict fast path of a contract: its body fields, exactly the types above, every feature present
    and not null, read under the producer's names."""
    fields = [
        (ours, t) if default is ... else (ours, t, default)
        for ours, (t, default) in _FIELD_TYPES.items()
        if ours in contract.body_fields
    ]
    message = msgspec.defstruct(
        "Message", fields, rename={ours: contract.name(ours) for ours in contract.body_fields}, gc=False
    )
    return msgspec.json.Decoder(message).decode


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_float(value: int | float) -> float:
    """A JSON number as float64; integers too large for a float become +-inf (then refused as non-finite)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def nesting_depth(body: Any) -> int:
    """Depth of a parsed JSON value (1 for a flat object), computed without recursion."""
    depth, stack = 0, [(body, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in node)
    return depth


def _utf8(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8 (a lone surrogate from a ``\\ud800`` escape cannot)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _type_name(value: object) -> str:
    return {bool: "boolean", str: "string", list: "array", dict: "object", type(None): "null"}.get(
        type(value), "number"
    )


def decode_slow(value: bytes, limits: ValidationLimits, contract: MessageContract = NATIVE) -> tuple | str:
    """The field tuple of a message the fast path did not take, or the reason it is refused.

    The tuple is ``(transaction_id, *features, event_time, label, source)``, as the
    fast path builds it (None for a field the contract takes from the record, not the body).
    Accepts only what the fast path would, except that ``NaN`` and ``Infinity`` tokens read as
    non-finite numbers (refused later with their field named). Reasons name the producer's fields.
    """
    try:
        body = json.loads(value)
    except RecursionError:
        return f"nesting too deep: more than {limits.max_nesting_depth} levels"
    except (ValueError, UnicodeDecodeError):
        return INVALID_JSON
    if not isinstance(body, dict):
        return f"{INVALID_JSON}: not an object"
    if nesting_depth(body) > limits.max_nesting_depth:
        return f"nesting too deep: more than {limits.max_nesting_depth} levels"
    in_body = contract.body_fields
    field = {ours: body.get(contract.name(ours)) for ours in in_body}
    expected = [
        *[(c, _is_number, "number") for c in FEATURES],
        *[(c, _is_int, "integer") for c in (MESSAGE_EVENT_TIME, MESSAGE_LABEL)],
        *[(c, lambda v: isinstance(v, str), "string") for c in (ID_COL, SOURCE_COL)],
    ]
    wrong = [
        f"{contract.name(c)} ({_type_name(field[c])}, expected {kind})"
        for c, ok, kind in expected
        if c in in_body and field[c] is not None and not ok(field[c])
    ]
    if wrong:
        return "wrong field type: " + "; ".join(wrong)
    tx_id = field.get(ID_COL)
    if ID_COL in in_body and (tx_id is None or not tx_id.strip()):
        return f"missing field: {contract.name(ID_COL)}"
    missing = [contract.name(c) for c in FEATURES if field[c] is None]
    if missing:
        return "missing or null field: " + ", ".join(missing)
    return (tx_id, *[_as_float(field[c]) for c in FEATURES], *[field.get(c) for c in OPTIONAL_FIELDS])


def _shallow(value: bytes, max_depth: int) -> bool:
    """True when the bytes cannot nest deeper than ``max_depth`` (no more brackets than that), so the
    fast path, which skips unknown fields unread, may take them."""
    return value.count(b"{") + value.count(b"[") <= max_depth


def decode_messages(
    values: Sequence[Optional[bytes]],
    limits: ValidationLimits,
    now_ms: int | None = None,
    contract: MessageContract = NATIVE,
    keys: Sequence[Optional[bytes]] | None = None,
    timestamps_ms: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per value: ``reason`` (None = valid), ``transaction_id``, optional fields, the features.

    ``now_ms`` (epoch ms) bounds ``event_time`` from above when given. The stream leaves it
    None: its driver applies that bound against the micro-batch's pinned start
    (fraud_ml.streaming.routing), so a batch replayed later decides exactly as its first attempt.
    Features are float64 and the optional fields null where the row has a reason;
    ``event_time`` is a nullable Int64 and ``label`` a nullable Int32. The ``contract`` names the
    producer's fields; where it takes the id from the record key or the event time from the record
    timestamp, ``keys`` or ``timestamps_ms`` (epoch ms, negative = none) hold them, one per value.
    """
    rows_of = _avro_rows if contract.format == "avro" else _json_rows
    reasons, features, columns, decoded = rows_of(values, limits, contract)
    if ID_COL not in contract.body_fields:
        _ids_from_keys(keys, columns[ID_COL], decoded, reasons)
    if MESSAGE_EVENT_TIME not in contract.body_fields:
        if timestamps_ms is None:
            raise ValueError("the contract takes event_time from the Kafka timestamp: pass timestamps_ms")
        stamps = np.asarray(timestamps_ms, dtype=np.int64)
        rows = np.flatnonzero(decoded & (stamps >= 0))
        columns[MESSAGE_EVENT_TIME][rows] = stamps[rows].tolist()
    event_time, label = _field_reasons(reasons, columns, features, decoded, limits, now_ms, contract)
    refused = np.array([r is not None for r in reasons], dtype=bool)
    for name in (ID_COL, SOURCE_COL):
        columns[name][refused] = None
    features[refused] = np.nan
    frame = pd.DataFrame(
        {
            REASON: reasons,
            ID_COL: columns[ID_COL],
            MESSAGE_EVENT_TIME: pd.arrays.IntegerArray(event_time[0], event_time[1] | refused),
            MESSAGE_LABEL: pd.arrays.IntegerArray(label[0], label[1] | refused),
            SOURCE_COL: columns[SOURCE_COL],
        }
    )
    return pd.concat([frame, pd.DataFrame(features, columns=FEATURES)], axis=1)


def _json_rows(
    values: Sequence[Optional[bytes]], limits: ValidationLimits, contract: MessageContract
) -> tuple[list, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """JSON values: (reasons, features, body columns, decoded mask) before the field checks."""
    n = len(values)
    reasons: list[Optional[str]] = [None] * n
    fast_index: list[int] = []
    fast_rows: list = []
    slow_index: list[int] = []
    slow_rows: list[tuple] = []
    max_bytes, max_depth, decode = limits.max_message_bytes, limits.max_nesting_depth, _fast_decoder(contract)
    body_optional = [name for name in (ID_COL, *OPTIONAL_FIELDS) if name in contract.body_fields]
    for i, value in enumerate(values):
        if not value:
            reasons[i] = "empty value"
            continue
        if len(value) > max_bytes:
            reasons[i] = f"oversized message: {len(value)} bytes > {max_bytes}"
            continue
        if not value.isascii():  # msgspec skips unknown fields unchecked: refuse bad UTF-8 anywhere first
            try:
                bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                reasons[i] = f"{INVALID_JSON}: not UTF-8"
                continue
        # A flat message holds one "{" and no "[": two memchr scans decide, counting only otherwise.
        if (b"[" not in value and value.find(b"{", value.find(b"{") + 1) < 0) or _shallow(value, max_depth):
            try:
                fast_rows.append(decode(value))
                fast_index.append(i)
                continue
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                pass
        row = decode_slow(bytes(value), limits, contract)
        if isinstance(row, str):
            reasons[i] = row
        else:
            slow_index.append(i)
            slow_rows.append(row)

    fast = slice(None) if len(fast_rows) == n else fast_index  # all fast (the usual case): no fancy indexing
    features = np.full((n, len(FEATURES)), np.nan)
    columns = {name: np.full(n, None, dtype=object) for name in (ID_COL, *OPTIONAL_FIELDS)}
    if fast_rows:
        features[fast] = np.fromiter(
            itertools.chain.from_iterable(map(_features_of, fast_rows)),
            dtype=np.float64,
            count=len(fast_rows) * len(FEATURES),
        ).reshape(len(fast_rows), len(FEATURES))
        for name in body_optional:
            columns[name][fast] = list(map(operator.attrgetter(name), fast_rows))
    if slow_rows:
        last = 1 + len(FEATURES)
        features[slow_index] = np.array([row[1:last] for row in slow_rows], dtype=np.float64)
        for k, name in enumerate((ID_COL, *OPTIONAL_FIELDS)):
            if name in body_optional:
                columns[name][slow_index] = [row[0 if k == 0 else last + k - 1] for row in slow_rows]
    decoded = np.zeros(n, dtype=bool)
    decoded[fast] = bool(fast_rows)
    decoded[slow_index] = True
    return reasons, features, columns, decoded


_AVRO_KINDS = {
    ID_COL: "string",
    **{c: "number" for c in FEATURES},
    MESSAGE_EVENT_TIME: "integer",
    MESSAGE_LABEL: "integer",
    SOURCE_COL: "string",
}


@dataclass(frozen=True)
class _AvroPlan:
    """What one contract reads from one writer schema, worked out once (it cost ~0.3 ms a batch)."""

    problem: str | None  # why the schema cannot give us the contract's fields, None when it can
    wanted: dict[str, str]  # producer field -> number | integer | string, of the fields the schema has
    features: tuple[str, ...]  # the producer's names of FEATURES, in order
    others: tuple[tuple[str, str], ...]  # (producer's name, ours) of the other fields the schema has
    id_field: str | None  # the producer's name of the id when the body holds it (then required)


@functools.lru_cache(maxsize=64)
def _avro_plan(decoder: Any, contract: MessageContract) -> _AvroPlan:
    from fraud_ml.streaming import avro

    ours = {contract.name(f): f for f in contract.body_fields}
    required = {ID_COL, *FEATURES} & set(contract.body_fields)
    needed = {theirs: (_AVRO_KINDS[f], f in required) for theirs, f in ours.items()}
    return _AvroPlan(
        problem=avro.incompatibility(decoder, needed),
        wanted={theirs: _AVRO_KINDS[f] for theirs, f in ours.items() if theirs in decoder.fields},
        features=tuple(contract.names(FEATURES)),
        others=tuple((t, f) for t, f in ours.items() if f not in _FEATURE_INDEX and t in decoder.fields),
        id_field=contract.name(ID_COL) if ID_COL in required else None,
    )


def _avro_rows(
    values: Sequence[Optional[bytes]], limits: ValidationLimits, contract: MessageContract
) -> tuple[list, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Avro values (Confluent wire format): the same as :func:`_json_rows`, each schema id's values
    decoded together (fraud_ml.streaming.avro)."""
    from fraud_ml.streaming import avro

    n = len(values)
    reasons: list[Optional[str]] = [None] * n
    features = np.full((n, len(FEATURES)), np.nan)
    columns = {name: np.full(n, None, dtype=object) for name in (ID_COL, *OPTIONAL_FIELDS)}
    decoded = np.zeros(n, dtype=bool)
    batch = avro.WireBatch.of(values)
    schema_ids, lengths = batch.schema_ids, batch.lengths
    oversized = lengths > limits.max_message_bytes
    for i in np.flatnonzero((lengths == 0) | oversized | (schema_ids < 0)):
        if not lengths[i]:
            reasons[i] = "empty value"
        elif oversized[i]:
            reasons[i] = f"oversized message: {lengths[i]} bytes > {limits.max_message_bytes}"
        else:
            reasons[i] = "not Avro: no Confluent wire-format header (magic byte 0, schema id)"
    pending = (lengths > 0) & ~oversized & (schema_ids >= 0)
    book = avro.schema_book(contract.avro)
    for schema_id in np.unique(schema_ids[pending]).tolist():
        rows = np.flatnonzero(pending & (schema_ids == schema_id))
        decoder = book.decoder(schema_id)
        plan = None if isinstance(decoder, str) else _avro_plan(decoder, contract)
        problem = decoder if plan is None else plan.problem
        if problem is not None:
            for i in rows.tolist():
                reasons[i] = problem
            continue
        out, why = batch.decode(decoder, rows, plan.wanted)
        good = np.equal(why, None)
        for j in np.flatnonzero(~good).tolist():
            reasons[rows[j]] = f"undecodable Avro body (schema id {schema_id}): {why[j]}"
        got = np.column_stack([out[name][0] for name in plan.features])
        absent = ~np.column_stack([out[name][1] for name in plan.features])
        for theirs, f in plan.others:
            column, present = out[theirs]
            columns[f][rows[good & present]] = column[good & present].tolist()
        if plan.id_field is None:
            no_id = np.zeros(len(rows), dtype=bool)
        else:
            column, present = out[plan.id_field]
            no_id = ~present | (column == "")
        for j in np.flatnonzero(good & no_id).tolist():
            reasons[rows[j]] = f"missing field: {plan.id_field}"
        gaps = good & ~no_id & absent.any(axis=1)
        for j, text in zip(np.flatnonzero(gaps).tolist(), _names(absent[gaps], plan.features)):
            reasons[rows[j]] = "missing or null field: " + text
        fine = good & ~no_id & ~gaps
        features[rows[fine]] = got[fine]
        decoded[rows[fine]] = True
    return reasons, features, columns, decoded


def _ids_from_keys(keys: Sequence[Optional[bytes]] | None, ids: np.ndarray, decoded: np.ndarray, reasons: list) -> None:
    """Transaction ids from the record keys (UTF-8 text) of the decoded rows; a row without one is refused."""
    if keys is None:
        raise ValueError("the contract takes transaction_id from the Kafka key: pass keys")
    for i in np.flatnonzero(decoded):
        key = keys[i]
        try:
            text = bytes(key).decode("utf-8") if key else ""
        except UnicodeDecodeError:
            reasons[i], decoded[i] = f"invalid {ID_COL} ({KAFKA_KEY}): not UTF-8", False
            continue
        if not text.strip():
            reasons[i], decoded[i] = f"missing field: {ID_COL} ({KAFKA_KEY})", False
        else:
            ids[i] = text


def _names(mask_rows: np.ndarray, names: Sequence[str]) -> list[str]:
    return [", ".join(n for n, bad in zip(names, row) if bad) for row in mask_rows]


def _int_column(values: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(values, null mask) of an object array of Python ints and None; ints beyond ``dtype`` are clipped to it."""
    missing = np.equal(values, None)
    out = np.zeros(len(values), dtype=dtype)
    present = values[~missing]
    if present.size:
        try:
            out[~missing] = present.astype(dtype)
        except OverflowError:
            low, high = np.iinfo(dtype).min, np.iinfo(dtype).max
            out[~missing] = [min(max(v, low), high) for v in present]
    return out, missing


def _field_reasons(
    reasons: list,
    columns: dict[str, np.ndarray],
    features: np.ndarray,
    decoded: np.ndarray,
    limits: ValidationLimits,
    now_ms: int | None,
    contract: MessageContract,
) -> tuple[tuple, tuple]:
    """Fill the reasons of decoded rows (id and source form, label, non-finite and out-of-range values);
    return ``event_time`` (int64) and ``label`` (int32) as (values, null mask)."""
    rows = np.flatnonzero(decoded)
    id_ok, source_ok = re.compile(limits.id_pattern).fullmatch, re.compile(limits.source_pattern).fullmatch
    max_id, max_source = limits.max_id_length, limits.max_source_length
    form = np.zeros(len(reasons), dtype=bool)  # rows whose id, source or label is refused (rare: named one by one)
    form[rows] = [
        not (
            len(i) <= max_id
            and id_ok(i) is not None
            and (i.isascii() or _utf8(i))
            and (s is None or (len(s) <= max_source and source_ok(s) is not None and (s.isascii() or _utf8(s))))
            and (lb is None or lb == 0 or lb == 1)
        )
        for i, s, lb in zip(columns[ID_COL][rows], columns[SOURCE_COL][rows], columns[MESSAGE_LABEL][rows])
    ]
    # label is 0/1 or refused (form) and event_time beyond 64 bits compares out of range once clipped.
    label = _int_column(np.where(form, None, columns[MESSAGE_LABEL]), np.int32)
    event_time = _int_column(columns[MESSAGE_EVENT_TIME], np.int64)
    has_event_time = ~event_time[1]
    with np.errstate(invalid="ignore"):
        non_finite = ~np.isfinite(features)
        amount, time_ = features[:, _AMOUNT], features[:, _TIME]
        too_large = np.abs(features[:, _PCA_INDEX]) > limits.max_abs_feature
    earliest = datetime.fromtimestamp(limits.min_event_time_ms / 1000, timezone.utc)
    name = contract.name
    features_shown, pca_shown = contract.names(FEATURES), contract.names(PCA_FEATURES)
    checks = [
        (form, lambda rows: [_form_reason(columns, i, limits, contract) for i in rows]),
        (
            non_finite.any(axis=1),
            lambda rows: ["non-finite value in: " + s for s in _names(non_finite[rows], features_shown)],
        ),
        (amount < 0, lambda rows: [f"out of range: negative {name('Amount')}"] * len(rows)),
        (
            amount > limits.max_amount,
            lambda rows: [f"out of range: {name('Amount')} > {limits.max_amount:g}"] * len(rows),
        ),
        (time_ < 0, lambda rows: [f"out of range: negative {name('Time')}"] * len(rows)),
        (time_ > limits.max_time, lambda rows: [f"out of range: {name('Time')} > {limits.max_time:g}"] * len(rows)),
        (
            too_large.any(axis=1),
            lambda rows: [
                f"out of range: |value| > {limits.max_abs_feature:g} in " + s
                for s in _names(too_large[rows], pca_shown)
            ],
        ),
        (
            has_event_time & (event_time[0] < limits.min_event_time_ms),
            lambda rows: [f"out of range: {name(MESSAGE_EVENT_TIME)} before {earliest:%Y-%m-%d}"] * len(rows),
        ),
        (
            has_event_time & (event_time[0] > event_time_limit(limits, now_ms)),
            lambda rows: [event_time_ahead_reason(limits, contract)] * len(rows),
        ),
    ]
    pending = decoded.copy()
    for mask, make in checks:
        hit = np.flatnonzero(pending & mask)
        if hit.size:
            for row, text in zip(hit, make(hit)):
                reasons[row] = text
            pending[hit] = False
    return event_time, label


def event_time_limit(limits: ValidationLimits, now_ms: int | None) -> int | float:
    """The latest accepted ``event_time`` (epoch ms) for a batch that started at ``now_ms`` (None: no bound)."""
    return math.inf if now_ms is None else now_ms + limits.max_event_time_ahead_ms


def event_time_ahead_reason(limits: ValidationLimits, contract: MessageContract = NATIVE) -> str:
    minutes = limits.max_event_time_ahead_ms / 60_000
    return f"out of range: {contract.name(MESSAGE_EVENT_TIME)} more than {minutes:g} minutes ahead"


def _form_reason(columns: dict[str, np.ndarray], i: int, limits: ValidationLimits, contract: MessageContract) -> str:
    """Why the id, source or label of row ``i`` is refused (the first of them that is)."""
    tx_id, source = columns[ID_COL][i], columns[SOURCE_COL][i]
    id_name, source_name = contract.name(ID_COL), contract.name(SOURCE_COL)
    if not tx_id.strip():
        return f"missing field: {id_name}"
    if len(tx_id) > limits.max_id_length:
        return f"invalid {id_name}: longer than {limits.max_id_length} characters"
    if re.fullmatch(limits.id_pattern, tx_id) is None or not _utf8(tx_id):
        return f"invalid {id_name}: characters outside {limits.id_pattern}"
    if source is not None and len(source) > limits.max_source_length:
        return f"invalid {source_name}: longer than {limits.max_source_length} characters"
    if source is not None and (re.fullmatch(limits.source_pattern, source) is None or not _utf8(source)):
        return f"invalid {source_name}: characters outside {limits.source_pattern}"
    return f"out of range: {contract.name(MESSAGE_LABEL)} must be 0 or 1"
