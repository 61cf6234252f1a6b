"""Kafka security settings, written once in config and translated for each client.

The producer and admin checks use librdkafka (confluent-kafka); the Spark source uses
the Java client. They name SASL credentials and CA certificates differently, so the
config holds neutral keys (``kafka.security.*``) and this module emits each dialect.
"""
from __future__ import annotations

from typing import Mapping

from fraud_ml.errors import ConfigError

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
            raise ConfigError(f"kafka.security.sasl_mechanism must be one of {', '.join(_LOGIN_MODULES)} "
                              f"with protocol {protocol}, got '{mechanism}'")
        if not sec.get("sasl_username") or not sec.get("sasl_password"):
            raise ConfigError("kafka.security.sasl_username and sasl_password are required with SASL "
                              "(set them from the environment, e.g. ${KAFKA_SASL_PASSWORD})")
        sec["sasl_mechanism"] = mechanism
    return sec


def librdkafka_options(security: Mapping[str, object]) -> dict[str, str]:
    """Properties for confluent-kafka (producer, admin client)."""
    sec = _checked(security)
    out = {"security.protocol": sec["protocol"]}
    if sec["protocol"].startswith("SASL"):
        out.update({"sasl.mechanism": sec["sasl_mechanism"], "sasl.username": sec["sasl_username"],
                    "sasl.password": sec["sasl_password"]})
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
        out["sasl.jaas.config"] = (f'{_LOGIN_MODULES[sec["sasl_mechanism"]]} required '
                                   f'username="{quote(sec["sasl_username"])}" password="{quote(sec["sasl_password"])}";')
    if sec.get("ssl_ca_location"):
        out.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": sec["ssl_ca_location"]})
    return out
