"""The seams to outside systems: Delta tables, Kafka admin and security, the Spark session, MLflow."""
