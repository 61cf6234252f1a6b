"""The data variants of the zoo's training set (the validation and test splits never change and
never hold synthetic rows):

* ``plain``: the train split as is;
* ``smote``: the ``smote`` table (train split + SMOTE frauds to ``synthetic.smote.ratio``), made
  in-process when that table is absent or stale;
* ``wgan`` / ``cwgan``: the train split + the rows of the ``wgan`` / ``cwgan`` table; skipped with
  a logged note when the table does not exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from fraud_ml.config import Config
from fraud_ml.errors import ConfigError, FraudMLError
from fraud_ml.io.delta import open_table, read_table
from fraud_ml.schema import ID_COL, LABEL, SOURCE_COL, SOURCE_CWGAN, SOURCE_SMOTE, SOURCE_WGAN, SYNTHETIC_SOURCES

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("plain", "smote", "wgan", "cwgan")


def parse_choices(value: str | Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """``"dt,xgb"`` or ``["dt", "xgb"]`` -> checked list (order kept, duplicates dropped)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(i).strip().lower() for i in items if str(i).strip()]
    unknown = [i for i in items if i not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what} {', '.join(unknown)} (use {', '.join(allowed)})")
    return list(dict.fromkeys(items))


def read_delta(path: str, spark: Any = None) -> pd.DataFrame | None:
    """A Delta table as pandas (Spark when given, else deltalake); None when there is no table."""
    table = open_table(path)
    if table is None:
        return None
    return read_table(spark, path).toPandas() if spark is not None else table.to_pandas()


@dataclass
class TrainingSets:
    """Training frames per data variant, and why a requested variant was skipped."""

    frames: dict[str, pd.DataFrame]
    skipped: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


def _smote_variant(train: pd.DataFrame, cfg: Config, spark: Any) -> tuple[pd.DataFrame, str]:
    path = cfg.table_path("smote")
    table = read_delta(path, spark)
    if table is not None and SOURCE_COL in table.columns and ID_COL in train.columns:
        real_ids = set(table.loc[table[SOURCE_COL] != SOURCE_SMOTE, ID_COL])
        if real_ids == set(train[ID_COL]):
            return table, f"table {path}"
        log.warning("SMOTE table %s was made from other train rows than the current split: redoing SMOTE", path)
    from fraud_ml.synthetic.smote import smote_table

    made = smote_table(
        train,
        ratio=cfg.get("synthetic.smote.ratio"),
        k_neighbors=cfg.get("synthetic.smote.k_neighbors"),
        seed=int(cfg.get("project.seed")),
    )
    return made, f"in-process SMOTE (ratio {cfg.get('synthetic.smote.ratio')})"


def _gan_variant(train: pd.DataFrame, cfg: Config, spark: Any, method: str) -> tuple[pd.DataFrame | None, str]:
    path = cfg.table_path(method)
    table = read_delta(path, spark)
    if table is None:
        return None, f"no {method.upper()} table at {path} (run jobs/synthesize.py --method {method})"
    rows = table[(table[SOURCE_COL] == method) & (table[LABEL] == 1)] if SOURCE_COL in table.columns else table
    if rows.empty:
        return None, f"the {method.upper()} table at {path} holds no '{method}' fraud rows"
    columns = [c for c in train.columns if c in rows.columns]
    return pd.concat([train, rows[columns]], ignore_index=True), f"train + {len(rows)} rows of {path}"


def training_sets(train: pd.DataFrame, cfg: Config, variants: Sequence[str], spark: Any = None) -> TrainingSets:
    """The training frame of each requested variant; absent/impossible ones are skipped with a note."""
    out = TrainingSets(frames={})
    for variant in parse_choices(variants, VARIANTS, "data variant"):
        try:
            if variant == "plain":
                frame, origin = train, "train split"
            elif variant == "smote":
                frame, origin = _smote_variant(train, cfg, spark)
            else:
                frame, origin = _gan_variant(train, cfg, spark, {"wgan": SOURCE_WGAN, "cwgan": SOURCE_CWGAN}[variant])
        except FraudMLError as exc:
            frame, origin = None, f"{variant} not applicable: {exc}"
        if frame is None:
            out.skipped[variant] = origin
            log.warning("skipping data variant '%s': %s", variant, origin)
            continue
        out.frames[variant], out.origins[variant] = frame, origin
        log.info(
            "data variant %-6s %7d rows, %5d frauds, %5d synthetic (%s)",
            variant,
            len(frame),
            int(frame[LABEL].sum()),
            synthetic_count(frame),
            origin,
        )
    return out


def synthetic_count(frame: pd.DataFrame) -> int:
    """Rows whose ``source`` is smote / wgan / cwgan."""
    return int(frame[SOURCE_COL].isin(SYNTHETIC_SOURCES).sum()) if SOURCE_COL in frame.columns else 0
