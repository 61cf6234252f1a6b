"""Input data: the real Kaggle file (extract), the synthetic generator, and the split.

``extract_creditcard`` reads a user's real ``creditcard.csv`` with Spark and tolerates
a UTF-8 BOM, an extra index column, float labels and duplicate rows; wrong columns
are rejected with a clear message. ``SyntheticCreditCardGenerator`` produces data
with the same schema, marked ``source = 'generated'``, for demos without real data.
``stratified_split`` is a pure transformation: exact per-class 60/20/20 by seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_ml.errors import DataSchemaError
from fraud_ml.schema import (
    FEATURES,
    ID_COL,
    KAGGLE_COLUMNS,
    LABEL,
    PCA_FEATURES,
    SOURCE_COL,
    SOURCE_GENERATED,
    SOURCE_REAL,
)

log = logging.getLogger(__name__)

# Columns of the train/validation/test Delta tables.
SPLIT_SCHEMA = T.StructType(
    [T.StructField(ID_COL, T.StringType(), False)]
    + [T.StructField(c, T.DoubleType(), True) for c in FEATURES]
    + [T.StructField(LABEL, T.IntegerType(), True), T.StructField(SOURCE_COL, T.StringType(), True)]
)

_INDEX_NAMES = {"", "_c0", "index", "unnamed: 0", "id", "row"}


def resolve_columns(raw_columns: list[str]) -> dict[str, str]:
    """Map raw CSV header names to the Kaggle names; reject anything else.

    Strips a BOM, quotes and whitespace; drops one leading index column
    (unnamed, ``_c0``, ``index``...). Raises DataSchemaError naming missing and
    unexpected columns.
    """
    cleaned = [c.replace("\ufeff", "").strip().strip('"').strip("'").strip() for c in raw_columns]
    mapping: dict[str, str] = {}
    unexpected: list[str] = []
    for position, (raw, name) in enumerate(zip(raw_columns, cleaned)):
        if name in KAGGLE_COLUMNS:
            if name in mapping.values():
                raise DataSchemaError(f"column '{name}' appears twice in the header")
            mapping[raw] = name
        elif position == 0 and (name.lower() in _INDEX_NAMES or name.lower().startswith("unnamed")):
            continue
        else:
            unexpected.append(name or f"<unnamed column {position + 1}>")
    missing = [c for c in KAGGLE_COLUMNS if c not in mapping.values()]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        raise DataSchemaError(
            "input does not have the Kaggle creditcard columns (Time, V1..V28, Amount, Class): " + "; ".join(parts)
        )
    return mapping


def extract_creditcard(spark: SparkSession, path: str, drop_duplicates: bool = True) -> DataFrame:
    """Read a real Kaggle ``creditcard.csv`` into the canonical schema plus id and source."""
    if "://" not in path and not Path(path).exists():
        raise DataSchemaError(f"input file not found: {path}")
    raw = spark.read.option("header", True).option("inferSchema", False).option("encoding", "UTF-8").csv(path)
    mapping = resolve_columns(raw.columns)
    df = raw.select([F.col(f"`{src}`").alias(dst) for src, dst in mapping.items()])
    typed = df.select(
        *[F.col(c).try_cast(T.DoubleType()).alias(c) for c in FEATURES],
        F.col(LABEL).try_cast(T.DoubleType()).alias(LABEL),
    )
    bad = typed.filter(F.greatest(*[F.col(c).isNull().cast("int") for c in KAGGLE_COLUMNS]) == 1).limit(1).collect()
    if bad:
        raise DataSchemaError(f"{path}: a row has an empty or non-numeric value, e.g. {bad[0].asDict()}")
    labels = {r[0] for r in typed.select(LABEL).distinct().limit(3).collect()}
    if not labels <= {0.0, 1.0}:
        raise DataSchemaError(f"{path}: Class must be 0 or 1, found {sorted(labels)}")
    typed = typed.withColumn(LABEL, F.col(LABEL).cast(T.IntegerType()))
    if drop_duplicates:
        typed = typed.dropDuplicates(KAGGLE_COLUMNS)
    return with_transaction_id(typed, SOURCE_REAL)


def with_transaction_id(df: DataFrame, source: str) -> DataFrame:
    """Add a deterministic ``transaction_id`` (hash of the row) and the ``source`` label."""
    row_hash = F.xxhash64(*[F.col(c) for c in KAGGLE_COLUMNS])
    tx_id = F.concat(F.lit("tx-"), F.lower(F.lpad(F.hex(row_hash), 16, "0")))
    return df.select(tx_id.alias(ID_COL), *KAGGLE_COLUMNS, F.lit(source).alias(SOURCE_COL))


@dataclass
class SyntheticCreditCardGenerator:
    """SYNTHETIC transactions with the Kaggle schema, for demos without the real file.

    Normals are Gaussian with decreasing variance over V1..V28 (as PCA
    components have); frauds shift a handful of components (V14, V12, V10, V17,
    V4, V11, V3) by moderate amounts and a share of them is camouflaged as normal,
    so the classes overlap and a good model reaches a realistic, not perfect,
    average precision. Time spans two days with a night-time dip; Amount is
    heavy-tailed (log-normal) and fraud amounts skew small-or-large.
    """

    n_rows: int = 100_000
    fraud_rate: float = 0.00172
    seed: int = 42
    camouflaged_share: float = 0.25

    _FRAUD_SHIFT = {"V14": -2.6, "V12": -2.2, "V10": -1.9, "V17": -2.0, "V4": 1.8, "V11": 1.5, "V3": -1.4}

    def generate(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        n = int(self.n_rows)
        n_fraud = max(1, int(round(n * self.fraud_rate)))
        labels = np.zeros(n, dtype=np.int32)
        labels[rng.choice(n, size=n_fraud, replace=False)] = 1
        scales = np.linspace(2.0, 0.35, len(PCA_FEATURES))
        v = rng.standard_t(df=6, size=(n, len(PCA_FEATURES))) * scales * 0.8
        fraud_idx = np.flatnonzero(labels == 1)
        overt = fraud_idx[rng.random(fraud_idx.size) >= self.camouflaged_share]
        for name, shift in self._FRAUD_SHIFT.items():
            j = PCA_FEATURES.index(name)
            v[overt, j] += shift * rng.lognormal(0.0, 0.45, size=overt.size)
        seconds = np.sort(self._times(rng, n))
        amount = np.round(np.exp(rng.normal(3.1, 1.35, size=n)), 2)
        big = rng.random(fraud_idx.size) < 0.3
        amount[fraud_idx] = np.where(
            big,
            np.round(np.exp(rng.normal(5.5, 1.0, fraud_idx.size)), 2),
            np.round(rng.uniform(0.0, 5.0, fraud_idx.size), 2),
        )
        frame = pd.DataFrame(v, columns=PCA_FEATURES)
        frame.insert(0, "Time", seconds)
        frame["Amount"] = np.clip(amount, 0.0, 25_000.0)
        frame[LABEL] = labels
        return frame[KAGGLE_COLUMNS]

    @staticmethod
    def _times(rng: np.random.Generator, n: int) -> np.ndarray:
        # Two days, fewer transactions between 1am and 6am (rejection sampling).
        out = np.empty(0)
        while out.size < n:
            t = rng.uniform(0, 172_800, size=2 * n)
            hour = (t / 3600.0) % 24
            keep = rng.random(t.size) < np.where((hour > 1) & (hour < 6), 0.25, 1.0)
            out = np.concatenate([out, t[keep]])
        return np.floor(out[:n])


def synthetic_dataframe(spark: SparkSession, n_rows: int, fraud_rate: float, seed: int) -> DataFrame:
    """The synthetic generator's rows as a Spark DataFrame with id and ``source='generated'``."""
    pdf = SyntheticCreditCardGenerator(n_rows=n_rows, fraud_rate=fraud_rate, seed=seed).generate()
    df = spark.createDataFrame(pdf, schema=SPLIT_SCHEMA[1:-1])
    return with_transaction_id(df, SOURCE_GENERATED)


def stratified_split(df: DataFrame, fractions: dict[str, float], seed: int) -> DataFrame:
    """Add a ``split`` column: exact per-class proportions, reproducible by ``seed``.

    Rows are ordered within each class by a seeded hash of their id, then cut at
    the cumulative fractions, so every split holds the same fraud rate (to one row).
    """
    total = sum(fractions.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    order = F.xxhash64(F.lit(int(seed)), F.col(ID_COL))
    window = Window.partitionBy(LABEL).orderBy(order, F.col(ID_COL))
    ranked = df.withColumn("_rank", F.row_number().over(window) - 1).withColumn(
        "_n", F.count(F.lit(1)).over(Window.partitionBy(LABEL))
    )
    bounds, cumulative = [], 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        bounds.append((name, cumulative))
    split_col = None
    for name, upper in bounds[:-1]:
        cond = F.col("_rank") < F.floor(F.col("_n") * F.lit(upper) + F.lit(0.5))
        split_col = F.when(cond, F.lit(name)) if split_col is None else split_col.when(cond, F.lit(name))
    split_col = split_col.otherwise(F.lit(bounds[-1][0])) if split_col is not None else F.lit(bounds[-1][0])
    return ranked.withColumn("split", split_col).drop("_rank", "_n")
