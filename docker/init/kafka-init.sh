#!/bin/bash
# One-shot: create the transactions topic (idempotent) with the partition count of
# conf/cluster.yaml (kafka.topic / kafka.partitions / kafka.replication_factor).
# Runs in the apache/kafka image against the internal listener.
set -euo pipefail
: "${KAFKA_BOOTSTRAP:?}" "${KAFKA_TOPIC:?}" "${KAFKA_PARTITIONS:?}" "${KAFKA_REPLICATION_FACTOR:?}"

/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
  --topic "$KAFKA_TOPIC" --partitions "$KAFKA_PARTITIONS" --replication-factor "$KAFKA_REPLICATION_FACTOR"
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --topic "$KAFKA_TOPIC"
