"""The Kafka seam: admin checks (broker reachable, topic created) and security settings.

Security is written once in config and translated for each client:
the producer and admin checks use librdkafka (confluent-kafka); the Spark source uses
the Java client. They name SASL credentials and CA certificates differently, so the
config holds neutral keys (``kafka.security.*``) and this module emits each dialect.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from fraud_ml.errors import ConfigError, KafkaUnavailableError

if TYPE_CHECKING:
    from fraud_ml.config import Config

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _checked(security: Mapping[str, object]) -> dict[str, str]:
    sec = {k: str(v) if v is not None else "" for k, v in security.items()}
    protocol = (sec.get("protocol") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"kafka.security.protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    sec["protocol"] = protocol
    if protocol.startswith("SASL"):
        mechanism = sec.get("sasl_mechanism", "").upper()
        if mechanism not in _LOGIN_MODULES:
            raise ConfigError(
                f"kafka.security.sasl_mechanism must be one of {', '.join(_LOGIN_MODULES)} "
                f"with protocol {protocol}, got '{mechanism}'"
            )
        if not sec.get("sasl_username") or not sec.get("sasl_password"):
            raise ConfigError(
                "kafka.security.sasl_username and sasl_password are required with SASL "
                "(set them from the environment, e.g. ${KAFKA_SASL_PASSWORD})"
            )
        sec["sasl_mechanism"] = mechanism
    return sec


def librdkafka_options(security: Mapping[str, object]) -> dict[str, str]:
    """Properties for confluent-kafka (producer, admin client)."""
    sec = _checked(security)
    out = {"security.protocol": sec["protocol"]}
    if sec["protocol"].startswith("SASL"):
        out.update(
            {
                "sasl.mechanism": sec["sasl_mechanism"],
                "sasl.username": sec["sasl_username"],
                "sasl.password": sec["sasl_password"],
            }
        )
    if sec.get("ssl_ca_location"):
        out["ssl.ca.location"] = sec["ssl_ca_location"]
    return out


def java_client_options(security: Mapping[str, object]) -> dict[str, str]:
    """Properties for the Java Kafka client (the Spark source prefixes each with ``kafka.``)."""
    sec = _checked(security)
    out = {"security.protocol": sec["protocol"]}
    if sec["protocol"].startswith("SASL"):
        quote = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
        out["sasl.mechanism"] = sec["sasl_mechanism"]
        out["sasl.jaas.config"] = (
            f"{_LOGIN_MODULES[sec['sasl_mechanism']]} required "
            f'username="{quote(sec["sasl_username"])}" password="{quote(sec["sasl_password"])}";'
        )
    if sec.get("ssl_ca_location"):
        out.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": sec["ssl_ca_location"]})
    return out


def admin_client(bootstrap_servers: str, security: dict[str, str] | None = None) -> AdminClient:
    """Admin client; librdkafka's own connection-refused chatter is silenced (we raise instead)."""
    return AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0, **(security or {})})


def check_reachable(bootstrap_servers: str, security: dict[str, str] | None = None, timeout: float = 10.0) -> None:
    """Raise KafkaUnavailableError with one clear line when no broker answers."""
    try:
        md = admin_client(bootstrap_servers, security).list_topics(timeout=timeout)
        if not md.brokers:
            raise KafkaException("no brokers in metadata")
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka broker unreachable at {bootstrap_servers} ({exc.args[0] if exc.args else exc}); "
            "start one with `make kafka-start` or fix kafka.bootstrap_servers"
        ) from None


def create_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int,
    replication_factor: int = 1,
    security: dict[str, str] | None = None,
    timeout: float = 30.0,
    config: dict[str, str] | None = None,
) -> bool:
    """Create ``topic`` (with topic-level ``config``) if missing; True if it was created."""
    check_reachable(bootstrap_servers, security)
    admin = admin_client(bootstrap_servers, security)
    if topic in admin.list_topics(timeout=timeout).topics:
        return False
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor, config=config or {})]
    )[topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" in str(exc):
            return False
        raise
    # Wait until the metadata shows every partition with a leader.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=5).topics.get(topic)
        if md is not None and len(md.partitions) == partitions and all(p.leader >= 0 for p in md.partitions.values()):
            break
        time.sleep(0.2)
    log.info("created topic %s with %d partitions", topic, partitions)
    return True


def ensure_topic(
    cfg: Config, topic: str | None = None, partitions: int | None = None, config: dict[str, str] | None = None
) -> bool:
    """Create ``topic`` (default ``kafka.topic``) on ``kafka.bootstrap_servers`` if missing, with
    ``kafka.partitions`` (or ``partitions``), ``kafka.replication_factor`` and topic-level ``config``;
    True if it was created."""
    return create_topic(
        cfg.get("kafka.bootstrap_servers"),
        topic or cfg.get("kafka.topic"),
        partitions or cfg.get("kafka.partitions"),
        cfg.get("kafka.replication_factor"),
        cfg.kafka_client_options(),
        config=config,
    )
