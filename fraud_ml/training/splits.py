"""The train/validation/test Delta tables: prepared (extract -> split -> load) and loaded."""

from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraud_ml.config import Config
from fraud_ml.errors import FraudMLError
from fraud_ml.io.delta import open_table, read_table, write_table
from fraud_ml.schema import LABEL, SPLITS
from fraud_ml.training.data import (
    extract_creditcard,
    stratified_split,
    synthetic_dataframe,
)

log = logging.getLogger(__name__)


def extract_input(spark: SparkSession, cfg: Config) -> DataFrame:
    """The real file at ``data.input`` if given, else the SYNTHETIC generator."""
    path = cfg.get("data.input")
    if path:
        log.info("reading REAL data from %s", path)
        return extract_creditcard(spark, path, drop_duplicates=cfg.get("data.drop_duplicates"))
    log.warning(
        "no data.input given: using the SYNTHETIC generator (%d rows, source='generated'); "
        "pass --input /path/to/creditcard.csv for the real Kaggle data",
        cfg.get("data.synthetic_rows"),
    )
    return synthetic_dataframe(
        spark, cfg.get("data.synthetic_rows"), cfg.get("data.synthetic_fraud_rate"), cfg.get("project.seed")
    )


def prepare_splits(spark: SparkSession, cfg: Config) -> dict[str, dict[str, int]]:
    """Split the input 60/20/20 by class and write one Delta table per split.

    Returns ``{split: {"rows": n, "frauds": k}}``.
    """
    fractions = {name: float(cfg.get(f"data.split.{name}")) for name in SPLITS}
    split = stratified_split(extract_input(spark, cfg), fractions, cfg.get("project.seed")).cache()
    counts = {name: {"rows": 0, "frauds": 0} for name in SPLITS}
    for row in split.groupBy("split").agg(F.count(F.lit(1)).alias("rows"), F.sum(LABEL).alias("frauds")).collect():
        counts[row["split"]] = {"rows": int(row["rows"]), "frauds": int(row["frauds"] or 0)}
    for name in SPLITS:
        path = cfg.table_path(name)
        write_table(split.filter(F.col("split") == name).drop("split").repartition(1), path)
        log.info("wrote %-10s %8d rows, %5d frauds -> %s", name, counts[name]["rows"], counts[name]["frauds"], path)
    split.unpersist()
    return counts


def load_splits(spark: SparkSession, cfg: Config) -> dict[str, pd.DataFrame]:
    """The train/validation/test Delta tables as pandas frames (one clear error when one is absent)."""
    out = {}
    for name in SPLITS:
        path = cfg.table_path(name)
        if open_table(path) is None:
            raise FraudMLError(
                f"split table '{name}' not found at {path}: prepare the splits first "
                "(make prepare, or jobs/synthesize.py --prepare)"
            )
        out[name] = read_table(spark, path).toPandas()
    return out
