"""Replay transactions into Kafka at a chosen rate.

Each message: key = transaction id, value = JSON (or Avro, ``stream.message.format``) with ``transaction_id``,
``event_time`` (epoch ms at send), the 30 features, ``label`` (ground truth, never
a model input) and ``source``, under the names of the configured message contract
(``stream.message``: a field the contract takes from the record key or timestamp is left
out of the body). Messages are serialised in vectorised chunks and sent with librdkafka's
batching (linger + compression), never a flush per message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Producer

from fraud_ml.config import Config
from fraud_ml.errors import DataSchemaError, FraudMLError
from fraud_ml.io.kafka import check_reachable
from fraud_ml.schema import (
    FEATURES,
    ID_COL,
    LABEL,
    MESSAGE_EVENT_TIME,
    MESSAGE_LABEL,
    SOURCE_COL,
)
from fraud_ml.streaming.avro import AvroWriter, avro_writer
from fraud_ml.streaming.contract import NATIVE, MessageContract

log = logging.getLogger(__name__)

TICK_S = 0.05  # rate-limited sends are paced in 50 ms slices


@dataclass
class ProduceReport:
    """What a replay sent."""

    sent: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def replay_frame(frame: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """The first ``n`` rows to replay, cycling with ``-r<k>`` id suffixes when ``n`` exceeds the data."""
    missing = [c for c in [ID_COL, *FEATURES] if c not in frame.columns]
    if missing:
        raise DataSchemaError(f"replay data lacks columns: {', '.join(missing)}")
    if n is None or n <= len(frame):
        return frame.head(n).reset_index(drop=True) if n is not None else frame.reset_index(drop=True)
    if len(frame) == 0:
        raise DataSchemaError("replay data is empty")
    rounds = []
    for k in range(int(np.ceil(n / len(frame)))):
        part = frame.copy()
        if k:
            part[ID_COL] = part[ID_COL].astype(str) + f"-r{k}"
        rounds.append(part)
    return pd.concat(rounds, ignore_index=True).head(n)


def encode_messages(
    chunk: pd.DataFrame, event_time_ms: int, contract: MessageContract = NATIVE, writer: AvroWriter | None = None
) -> tuple[list[bytes], list[bytes]]:
    """(keys, values) for a chunk of rows, fields named by ``contract``: JSON vectorised through
    ``DataFrame.to_json``, or Avro in the wire format of ``writer`` when the contract's format is avro.
    The key is the transaction id whatever the contract."""
    ids = chunk[ID_COL].astype(str).to_numpy()
    columns = {ID_COL: ids, MESSAGE_EVENT_TIME: np.full(len(chunk), event_time_ms, np.int64)}
    columns.update(zip(FEATURES, chunk[list(FEATURES)].to_numpy(dtype=np.float64).T))
    if LABEL in chunk.columns:
        columns[MESSAGE_LABEL] = chunk[LABEL].astype("Int64").array
    if SOURCE_COL in chunk.columns:
        columns[SOURCE_COL] = chunk[SOURCE_COL].astype(str).to_numpy()
    body = pd.DataFrame({c: v for c, v in columns.items() if c in contract.body_fields})
    body.columns = contract.names(list(body.columns))
    keys = [k.encode() for k in ids]
    if contract.format == "avro":
        if writer is None:
            raise ValueError("the contract's format is avro: pass the AvroWriter to encode with")
        return keys, writer.encode_frame(body)
    values = body.to_json(orient="records", lines=True, double_precision=15).splitlines()
    return keys, [v.encode() for v in values]


def producer_config(cfg: Config) -> dict:
    """librdkafka settings: batching, compression, idempotence, plus ``kafka.security``."""
    return {
        "bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
        "linger.ms": cfg.get("producer.linger_ms"),
        "batch.size": cfg.get("producer.batch_size_bytes"),
        "compression.type": cfg.get("producer.compression"),
        "acks": cfg.get("producer.acks"),
        "enable.idempotence": True,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "log_level": 3,
        **cfg.kafka_client_options(),
    }


def send_raw(messages: Sequence[tuple[bytes | None, bytes | None]], cfg: Config, topic: str | None = None) -> int:
    """Send (key, value) pairs as they are (fault tests, fuzzing); return how many were delivered."""
    topic = topic or cfg.get("kafka.topic")
    producer = Producer(producer_config(cfg))
    failures: list[KafkaError] = []
    for key, value in messages:
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    on_delivery=lambda err, _msg: failures.append(err) if err is not None else None,
                )
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(120)
    if remaining or failures:
        first = failures[0].str() if failures else f"{remaining} messages still queued"
        raise FraudMLError(
            f"{len(failures) + remaining} of {len(messages)} messages were not delivered to {topic}: {first}"
        )
    return len(messages)


def replay(
    frame: pd.DataFrame,
    cfg: Config,
    topic: str | None = None,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ProduceReport:
    """Send every row of ``frame`` to Kafka at ``rate`` tx/s (0 = as fast as possible), in the message
    contract of ``stream.message``."""
    topic = topic or cfg.get("kafka.topic")
    contract = MessageContract.from_config(cfg)
    writer = (
        avro_writer(contract.avro, cfg.get("stream.message.avro_writer_schema_id"))
        if contract.format == "avro"
        else None
    )
    rate = cfg.get("producer.rate") if rate is None else float(rate)
    check_reachable(cfg.get("kafka.bootstrap_servers"), cfg.kafka_client_options())
    producer = Producer(producer_config(cfg))
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg) -> None:
        if err is not None:
            failures.append(err)

    chunk_rows = max(1, int(rate * TICK_S)) if rate > 0 else 5000
    started = time.perf_counter()
    sent = 0
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        if rate > 0:  # pace: this chunk is due at start/rate seconds after the beginning
            delay = started + start / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        keys, values = encode_messages(chunk, int(time.time() * 1000), contract, writer)
        for key, value in zip(keys, values):
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # local queue full: let librdkafka drain it
                    producer.poll(0.05)
        producer.poll(0)
        sent += len(keys)
        if on_progress:
            on_progress(len(keys))
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    if remaining or failures:
        first = failures[0].str() if failures else f"{remaining} messages still queued"
        raise FraudMLError(f"{len(failures) + remaining} of {sent} messages were not delivered to {topic}: {first}")
    return ProduceReport(sent=sent, failed=0, seconds=seconds)
