"""fraud_ml: real-time credit-card fraud detection on Spark, Kafka, MLflow and Delta Lake."""

__version__ = "0.1.0"
