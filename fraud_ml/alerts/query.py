"""The alerts query: transactions topic -> validation and the compiled champion -> alerts / dead-letter.

One real-time-mode query (``trigger(realTime=...)``), one Kafka sink: each output row names its
topic. A valid transaction gives an alert keyed by its id (all decisions or flagged ones only,
``alerts.emit``); a refused message goes to the dead-letter topic unchanged (key and value),
its reason and origin in headers. The champion version is resolved once, at start, and every
alert names it. Delivery is at least once (a restarted batch re-sends what its failed attempt
may have sent): consumers deduplicate on the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fraud_ml.alerts.booster_sql import CompiledChampion, check_scorer, compile_model_dir, score
from fraud_ml.alerts.validation_sql import validate
from fraud_ml.config import Config
from fraud_ml.errors import ConfigError
from fraud_ml.schema import ID_COL, MESSAGE_EVENT_TIME
from fraud_ml.streaming.contract import NATIVE, MessageContract
from fraud_ml.streaming.messages import REASON, ValidationLimits

log = logging.getLogger(__name__)

EMIT = ("flagged", "all")
# The broker stamps each alert when it appends it: a consumer reads the alert's latency from the
# record alone (its timestamp - the input's Kafka timestamp in the value).
ALERTS_TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime"}
HEADERS_TYPE = "array<struct<key:string,value:binary>>"
# The rows Spark's Kafka source gives (the warm-up's synthetic messages take this shape).
KAFKA_SOURCE_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, timestampType int"
)
STARTED = "alerts query started"  # the log line's start once the query runs (the demo waits for it)
# Names of the dead-letter headers (Kafka Connect's DLQ convention: the error and the origin).
DEAD_LETTER_HEADERS = ("reason", "source.topic", "source.partition", "source.offset", "source.timestamp")


@dataclass(frozen=True)
class AlertsSettings:
    """``alerts.*`` of the config, checked."""

    topic: str
    dead_letter_topic: str
    emit: str
    scorer: str
    fast_path: bool
    checkpoint_dir: str
    starting_offsets: str
    batch_duration: str
    warmup_rows: int

    @classmethod
    def from_config(cls, cfg: Config) -> "AlertsSettings":
        a = cfg.get("alerts")
        if a["emit"] not in EMIT:
            raise ConfigError(f"alerts.emit must be one of {', '.join(EMIT)}, got {a['emit']!r}")
        check_scorer(a["scorer"])
        if a["topic"] == a["dead_letter_topic"] or cfg.get("kafka.topic") in (a["topic"], a["dead_letter_topic"]):
            raise ConfigError("kafka.topic, alerts.topic and alerts.dead_letter_topic must be three different topics")
        contract = MessageContract.from_config(cfg)
        if contract != NATIVE:  # validation_sql.py spells the native field names and reads no key or timestamp
            raise ConfigError(
                "the alerts job reads the native message contract only (stream.message.preset=native, no "
                f"overrides); this config's contract is {contract.as_mapping()}"
            )
        return cls(
            topic=a["topic"],
            dead_letter_topic=a["dead_letter_topic"],
            emit=a["emit"],
            scorer=a["scorer"],
            fast_path=a["fast_path"],  # a boolean: the config refuses another type for a boolean key
            checkpoint_dir=str(a["checkpoint_dir"]),
            starting_offsets=a["starting_offsets"],
            batch_duration=a["batch_duration"],
            warmup_rows=_non_negative(a["warmup_rows"], "alerts.warmup_rows"),
        )


def _non_negative(value: int, key: str) -> int:
    if value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}")
    return value


def ensure_alerts_topics(cfg: Config) -> None:
    """Create the transactions, alerts (``LogAppendTime``) and dead-letter topics where missing."""
    from fraud_ml.io.kafka import ensure_topic

    settings = AlertsSettings.from_config(cfg)
    ensure_topic(cfg)
    ensure_topic(cfg, settings.topic, config=ALERTS_TOPIC_CONFIG)
    ensure_topic(cfg, settings.dead_letter_topic)


def load_champion(cfg: Config) -> CompiledChampion:
    """The version behind the champion alias now, downloaded, verified and compiled (pinned for the run)."""
    from fraud_ml.io.mlflow import download_verified, resolve_alias, setup_mlflow

    setup_mlflow(cfg)
    version, uri = resolve_alias(cfg)
    champion = compile_model_dir(download_verified(uri), version)
    log.info(
        "alerts: champion version %s compiled (%d trees, threshold %.6g)",
        version,
        len(champion.trees),
        champion.threshold,
    )
    return champion


def alert_rows(kafka_rows, champion: CompiledChampion, limits: ValidationLimits, settings: AlertsSettings):
    """Kafka source rows -> Kafka sink rows (``topic``, ``key``, ``value``, ``headers``).

    Pure (no I/O): the same function serves the real-time query and the batch tests.
    """
    from pyspark.sql import functions as F

    scored = score(validate(kafka_rows, limits, settings.fast_path), champion, settings.scorer)
    valid = F.col(REASON).isNull()
    alert = F.to_json(
        F.struct(
            F.col(ID_COL),
            F.col("probability"),
            F.col("decision"),
            F.lit(champion.version).alias("model_version"),
            F.unix_millis(F.col("timestamp")).alias("kafka_timestamp_ms"),
            F.col(MESSAGE_EVENT_TIME),
        )
    )
    origin = [F.col(REASON), F.col("topic"), F.col("partition"), F.col("offset"), F.unix_millis(F.col("timestamp"))]
    kept = valid & (F.col("decision") == 1) if settings.emit == "flagged" else valid
    return scored.where(kept | ~valid).select(
        F.when(valid, F.lit(settings.topic)).otherwise(F.lit(settings.dead_letter_topic)).alias("topic"),
        F.when(valid, F.encode(F.col(ID_COL), "UTF-8")).otherwise(F.col("key")).alias("key"),
        F.when(valid, F.encode(alert, "UTF-8")).otherwise(F.coalesce(F.col("value"), F.lit(b""))).alias("value"),
        # The Kafka sink takes exactly this type (nullable fields): cast, whatever the branches infer.
        F.when(valid, F.array())
        .otherwise(F.array(*(_header(n, v) for n, v in zip(DEAD_LETTER_HEADERS, origin))))
        .cast(HEADERS_TYPE)
        .alias("headers"),
    )


def _header(name: str, value):
    """A Kafka header (key, UTF-8 value) of a column's text."""
    from pyspark.sql import functions as F

    return F.struct(F.lit(name).alias("key"), F.encode(value.cast("string"), "UTF-8").alias("value"))


def warmup_messages(spark, rows: int, now_ms: int):
    """``rows`` synthetic producer messages as Kafka source rows (a batch DataFrame), stamped ``now_ms``."""
    import pandas as pd

    from fraud_ml.streaming.producer import encode_messages
    from fraud_ml.training.data import SyntheticCreditCardGenerator

    frame = SyntheticCreditCardGenerator(n_rows=rows, seed=0).generate()
    frame.insert(0, ID_COL, [f"warm-up-{i}" for i in range(rows)])
    keys, values = encode_messages(frame, now_ms)
    kafka = pd.DataFrame(
        {
            "key": keys,
            "value": values,
            "topic": "warm-up",
            "partition": 0,
            "offset": range(rows),
            "timestamp": pd.Timestamp(now_ms, unit="ms", tz="UTC"),
            "timestampType": 0,
        }
    )
    return spark.createDataFrame(kafka, KAFKA_SOURCE_SCHEMA)


def warm_up(spark, champion: CompiledChampion, limits: ValidationLimits, settings: AlertsSettings) -> None:
    """Run the alerts transformation over ``settings.warmup_rows`` synthetic messages into Spark's
    ``noop`` sink, so the JVM has compiled validation and scoring before the first transaction.

    Without it the first seconds of traffic met interpreted code: in ``make demo`` the alerts JVM
    took 60-90 % of a core in the replay's first five seconds and the stream's first scored row came
    6.0-6.7 s after the replay began instead of 3.1 s (docs/performance.md). Nothing is sent anywhere.
    """
    import time

    if not settings.warmup_rows:
        return
    started = time.monotonic()
    rows = warmup_messages(spark, settings.warmup_rows, int(time.time() * 1000))
    alert_rows(rows, champion, limits, settings).write.format("noop").mode("overwrite").save()
    log.info("alerts: warmed up on %d synthetic messages in %.1f s", settings.warmup_rows, time.monotonic() - started)


def start_alerts(spark, cfg: Config, champion: CompiledChampion | None = None):
    """Warm the JVM up, then start the real-time alerts query (returns the StreamingQuery)."""
    from fraud_ml.streaming.batch_scoring import kafka_source_options

    settings = AlertsSettings.from_config(cfg)
    champion = champion or load_champion(cfg)
    warm_up(spark, champion, ValidationLimits.from_config(cfg), settings)
    source = {
        **kafka_source_options(cfg),
        **{str(k): str(v) for k, v in (cfg.get("alerts.source_options") or {}).items()},
        "startingOffsets": settings.starting_offsets,
    }
    source.pop("maxOffsetsPerTrigger", None)  # real-time mode reads without a per-batch cap
    rows = spark.readStream.format("kafka").options(**source).load()
    out = alert_rows(rows, champion, ValidationLimits.from_config(cfg), settings)
    sink = {
        "kafka.bootstrap.servers": cfg.get("kafka.bootstrap_servers"),
        **{str(k): str(v) for k, v in (cfg.get("alerts.sink_options") or {}).items()},
        **{f"kafka.{k}": v for k, v in cfg.kafka_java_options().items()},
    }
    query = (
        out.writeStream.format("kafka")
        .options(**sink)
        .option("checkpointLocation", settings.checkpoint_dir)
        .queryName("fraud-alerts")
        .outputMode("update")
        .trigger(realTime=settings.batch_duration)
        .start()
    )
    log.info(
        STARTED + ": %s -> %s (%s decisions) and %s, model version %s",
        cfg.get("kafka.topic"),
        settings.topic,
        settings.emit,
        settings.dead_letter_topic,
        champion.version,
    )
    return query
