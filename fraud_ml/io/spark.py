"""Build the SparkSession: Delta Lake, the Kafka source and the venv's Python for workers."""

from __future__ import annotations

import logging
import os
import re
import sys

from pyspark.sql import SparkSession

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError
from fraud_ml.local.jars import spark_jars

log = logging.getLogger(__name__)

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Keep tables readable by the `deltalake` (delta-rs) package used by the dashboard.
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    # New tables checkpoint every 100 commits, not 10: a streaming table commits once per
    # micro-batch and each checkpoint stalled its batch for about 6 s (docs/performance.md).
    "spark.databricks.delta.properties.defaults.checkpointInterval": "100",
    # Compact small files after a write once a table has 50 of them (one file per micro-batch
    # otherwise piles up; the duplicate check reads the recent files of `predictions`).
    "spark.databricks.delta.autoCompact.enabled": "true",
}


# A JVM memory size as spark-submit takes it: a whole number, MiB without a unit.
MEMORY_SIZE = re.compile(r"[1-9][0-9]*[kmgtKMGT]?")


def memory_size(cfg: Config, key: str) -> str:
    """``cfg[key]`` checked as a JVM memory size ("768m", "2g"): one ConfigError line, not a JVM that fails to start."""
    value = cfg.get(key)
    if not isinstance(value, str) or not MEMORY_SIZE.fullmatch(value):
        raise ConfigError(f"{key} must be a memory size such as 768m or 2g, got {value!r}")
    return value


def spark_conf(cfg: Config, app_name: str | None = None) -> dict[str, str]:
    """Every Spark setting the project needs, as a plain dict (pure; easy to test)."""
    conf = {
        "spark.app.name": app_name or cfg.get("spark.app_name"),
        "spark.sql.shuffle.partitions": str(cfg.get("spark.shuffle_partitions")),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.get("spark.arrow_batch_size")),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        **DELTA_CONF,
    }
    conf.update({str(k): str(v) for k, v in (cfg.get("spark.conf") or {}).items()})
    return conf


def build_spark(cfg: Config, app_name: str | None = None) -> SparkSession:
    """Get or create the SparkSession described by ``cfg``.

    Run directly (``python jobs/x.py``) the session is created here with the
    Maven-resolved jars as ``spark.jars``. Under ``spark-submit`` the JVM already
    exists: pass the jars with ``--jars "$(python -m fraud_ml.local.jars --csv)"``.
    """
    # Workers must run the same interpreter (the venv) or pandas UDFs fail.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder
    under_submit = "SPARK_SUBMIT_OPTS" in os.environ or os.environ.get("PYSPARK_GATEWAY_PORT")
    if not under_submit:
        if cfg.get("spark.bind_address"):  # read by the JVM we start: the driver and the Spark UI bind to it
            os.environ.setdefault("SPARK_LOCAL_IP", cfg.get("spark.bind_address"))
        builder = builder.master(cfg.get("spark.master")).config(
            "spark.driver.memory", memory_size(cfg, "spark.driver_memory")
        )
        builder = builder.config("spark.jars", ",".join(spark_jars(cfg.get("spark.jars_dir"))))
    for key, value in spark_conf(cfg, app_name).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("Spark %s session '%s' on %s", spark.version, spark.sparkContext.appName, spark.sparkContext.master)
    return spark
