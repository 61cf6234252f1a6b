"""Local development infrastructure: the embedded Kafka broker, Maven jars, a standalone Spark cluster, Chromium."""
