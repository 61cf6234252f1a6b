"""Fuzzed Kafka messages for the stream's end-to-end fault tests and ``make bench-fuzz``.

Deterministic for a seed (``random.Random``), so a failing run can be replayed. The mix
follows the property-based tests of the decoder (tests/streaming/test_messages_fuzz.py): valid
messages, mutations of valid ones (fields replaced by huge integers, big floats, strings,
booleans, nulls, nested containers, unicode edge cases with lone surrogates and NUL, or
removed; repeated keys; truncation; byte flips; deep nesting; invalid UTF-8), arbitrary
JSON values, arbitrary bytes, empty and missing values, and repeated transaction ids.
"""

from __future__ import annotations

import json
import random
from typing import Any

from fraud_ml.schema import FEATURES

FIELDS = ["transaction_id", "event_time", "label", "source", *FEATURES, "unknown"]
_TEXT = ["", "x", "\ud800", "\udfff", "\x00", "\u2028", "\ufeff", "𝔘", "a b", "é" * 3, "tx-" + "9" * 200]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(11 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**70), 2**70)
    if kind == 3:
        return rng.choice([10**400, -(10**400), 2**63, -(2**63) - 1, 0, 1, -1])
    if kind == 4:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308, -1e-308, 5e-324, 1e39])
    if kind == 5:
        return rng.uniform(-1e7, 1e7)
    if kind in (6, 7):
        return rng.choice(_TEXT)
    if kind == 8:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 9:
        return {rng.choice(_TEXT): _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return rng.uniform(-5, 5)


def valid_body(rng: random.Random, tx_id: str, event_time_ms: int) -> dict:
    """A scorable transaction (bounded features, label 0/1)."""
    return {
        "transaction_id": tx_id,
        "event_time": event_time_ms,
        "Time": rng.uniform(0, 172_792),
        **{c: rng.gauss(0, 2) for c in FEATURES[1:-1]},
        "Amount": round(rng.uniform(0, 500), 2),
        "label": int(rng.random() < 0.01),
        "source": "fuzz",
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def mutate(rng: random.Random, body: dict) -> bytes:
    """One mutation of a valid message body, as bytes."""
    body = dict(body)
    for field in rng.sample(FIELDS, rng.randrange(1, 4)):
        if rng.random() < 0.3:
            body.pop(field, None)
        else:
            body[field] = _value(rng)
    raw = _dumps(body)
    kind = rng.randrange(8)
    if kind == 0:
        raw = raw[: rng.randrange(len(raw) + 1)]
    elif kind == 1:
        pos = rng.randrange(len(raw))
        raw = raw[:pos] + bytes([rng.randrange(256)]) + raw[pos + 1 :]
    elif kind == 2:
        raw = raw[:-1] + b', "' + rng.choice(FIELDS).encode() + b'": ' + _dumps(_value(rng)) + b"}"
    elif kind == 3:
        depth = rng.randrange(1, 60)
        raw = raw[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == 4:
        raw = raw.replace(b'"source"', b'"s\xff\xfeource"', 1)
    return raw


def fuzzed_messages(
    n: int, seed: int, event_time_ms: int, good_share: float = 0.5, id_prefix: str = "fz"
) -> tuple[list[tuple[bytes | None, bytes | None]], set[str]]:
    """``n`` (key, value) pairs and the ids of the distinct valid transactions among them.

    About ``good_share`` are valid messages (one in 20 of those repeats an earlier id);
    the rest are mutations, arbitrary JSON values, arbitrary bytes, empty or null values.
    """
    rng = random.Random(seed)
    out: list[tuple[bytes | None, bytes | None]] = []
    good: list[tuple[bytes, bytes]] = []
    ids: set[str] = set()
    for i in range(n):
        tx_id = f"{id_prefix}-{seed}-{i}"
        roll = rng.random()
        if roll < good_share:
            if good and rng.random() < 0.05:
                out.append(rng.choice(good))  # a repeated transaction id (same key, same partition)
                continue
            pair = (tx_id.encode(), _dumps(valid_body(rng, tx_id, event_time_ms)))
            good.append(pair)
            ids.add(tx_id)
            out.append(pair)
        elif roll < good_share + (1 - good_share) * 0.6:
            out.append((tx_id.encode(), mutate(rng, valid_body(rng, tx_id, event_time_ms))))
        elif roll < good_share + (1 - good_share) * 0.8:
            out.append((tx_id.encode(), _dumps(_value(rng))))
        elif roll < good_share + (1 - good_share) * 0.95:
            out.append(
                (
                    rng.choice([None, b"\xff\x00key", tx_id.encode()]),
                    bytes(rng.randrange(256) for _ in range(rng.randrange(300))),
                )
            )
        else:
            out.append((None, rng.choice([None, b""])))
    return out, ids
