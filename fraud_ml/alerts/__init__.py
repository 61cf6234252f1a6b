"""The real-time alerts path: Kafka -> the champion's decision -> Kafka, scored in the JVM.

``booster_sql`` compiles the registered champion (XGBoost trees, prior shift, threshold) into
one Spark SQL expression; ``validation_sql`` is the quarantine rules of
``fraud_ml.streaming.messages`` as Spark SQL; ``query`` runs both in Spark's real-time mode.
No Python UDF is involved: real-time mode does not allow one.
"""
