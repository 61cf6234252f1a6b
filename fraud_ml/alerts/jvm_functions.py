"""The project's Java Spark SQL functions (spark/udf, built by ``make jars``), registered per session.

Each class takes one text argument (its configuration, written by the Python side) and is
registered under a name derived from that text, so a session can hold several configurations
(two models, two sets of limits) at once and a repeated registration is harmless.
"""

from __future__ import annotations

import hashlib

from fraud_ml.errors import JarsError


def register_java_function(spark, class_name: str, prefix: str, config_text: str, return_ddl: str) -> str:
    """Register ``class_name(config_text)`` as a SQL function returning ``return_ddl``; return its name."""
    from py4j.java_gateway import JavaClass

    jvm = spark.sparkContext._jvm
    java_class = jvm
    for part in class_name.split("."):
        java_class = getattr(java_class, part)
    if not isinstance(java_class, JavaClass):
        raise JarsError(f"{class_name} is not on Spark's classpath (spark/udf): run `make jars`")
    name = f"{prefix}_{hashlib.sha256(config_text.encode()).hexdigest()[:16]}"
    return_type = jvm.org.apache.spark.sql.types.DataType.fromDDL(return_ddl)
    spark._jsparkSession.udf().register(name, java_class(config_text), return_type)
    return name
