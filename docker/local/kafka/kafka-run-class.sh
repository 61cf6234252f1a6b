#!/bin/bash
# java with the broker's classpath, as Kafka's own bin/kafka-run-class.sh.
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/bin/log4j2.properties -cp "/opt/kafka/libs/*" "$@"
