#!/bin/bash
# The apache/kafka image's configuration contract: each KAFKA_<NAME> variable becomes the broker
# property <name> ("_" -> ".", "__" -> "_", "___" -> "-"), CLUSTER_ID formats the storage once.
# DRY_RUN=1 prints the properties instead (tests/test_compose.py).
set -euo pipefail
: "${CLUSTER_ID:?set CLUSTER_ID}"
props=/opt/kafka/config/server.properties
[ "${DRY_RUN:-0}" = "1" ] && props=$(mktemp)
: > "$props"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_LOG4J_OPTS|KAFKA_GC_LOG_OPTS) continue ;;
  esac
  key=$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' | tr '[:upper:]' '[:lower:]')
  printf '%s=%s\n' "$key" "$value" >> "$props"
done < <(env | grep '^KAFKA_' | sort)
if [ "${DRY_RUN:-0}" = "1" ]; then cat "$props"; rm -f "$props"; exit 0; fi
log_dirs=$(sed -n 's/^log\.dirs=//p' "$props")
if [ ! -f "${log_dirs:-/var/lib/kafka/data}/meta.properties" ]; then
  /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool format --cluster-id="$CLUSTER_ID" -c "$props" --ignore-formatted
fi
exec /opt/kafka/bin/kafka-run-class.sh kafka.Kafka "$props"
