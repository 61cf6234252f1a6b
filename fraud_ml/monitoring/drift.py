"""Drift job: population stability index (PSI) per time window into the ``drift`` Delta table.

What is compared (pandas + ``deltalake``, no Spark needed):

* **features** (``stream.prediction_features``, copied into ``predictions`` by the
  streaming job): each window of scored transactions against the ``train`` split,
  the data the model learned from. Rows of oversampling sources (anything other
  than ``real``/``generated``/null, e.g. ``smote``) are left out of the reference.
* **score** (``probability``): each window against the first
  ``drift.reference_rows`` predictions *of the same model version*.
  Scores only exist once a model scores, and a new champion has a different score
  distribution by design, so each version is its own reference: the score PSI
  answers "has this model's output moved since it went live?". (Scoring the
  validation split instead would need the model and xgboost in this job; the
  first live rows are scored by the very same pyfunc under production conditions.)

Bins: ``drift.psi_bins`` quantile bins of the reference (duplicate edges
merged, open-ended outer bins); empty bins are floored at 1e-4.
Windows: fixed ``drift.window`` intervals of ``scored_at``; windows
with fewer than ``drift.min_rows`` rows are skipped.

Runs are incremental: the newest window already in the table (possibly partial
when the stream was still running) and everything after it are recomputed and
replaced in one commit (``overwrite`` with a ``window_start >=`` predicate).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds

from fraud_ml.config import Config
from fraud_ml.errors import FraudMLError
from fraud_ml.io.delta_reader import read_columns, table_version
from fraud_ml.monitoring.psi import psi, psi_edges
from fraud_ml.monitoring.quality import parse_interval
from fraud_ml.schema import SOURCE_COL, SOURCE_GENERATED, SOURCE_REAL

log = logging.getLogger(__name__)

SCORE_FEATURE = "probability"
TRAIN_REFERENCE = "train"
REFERENCE_SOURCES = (SOURCE_REAL, SOURCE_GENERATED)
_TS = pa.timestamp("us", tz="UTC")
DRIFT_SCHEMA = pa.schema(
    [
        pa.field("window_start", _TS, nullable=False),
        pa.field("window_end", _TS, nullable=False),
        pa.field("feature", pa.string(), nullable=False),  # a feature name or "probability"
        pa.field("model_version", pa.string()),  # score rows only; null for features
        pa.field("psi", pa.float64()),
        pa.field("rows", pa.int64(), nullable=False),  # rows in the window (of that version for the score)
        pa.field("reference", pa.string(), nullable=False),  # what the window was compared with
        pa.field("reference_rows", pa.int64(), nullable=False),
        pa.field("bins", pa.int32(), nullable=False),  # bins actually used (after merging duplicate edges)
        pa.field("computed_at", _TS, nullable=False),
    ]
)


@dataclass(frozen=True)
class DriftSettings:
    """Parameters of the PSI computation (from ``dashboard.*`` and ``stream.prediction_features``)."""

    features: tuple[str, ...]
    window: str = "1min"
    bins: int = 10
    min_rows: int = 200
    reference_rows: int = 5000

    @classmethod
    def from_config(cls, cfg: Config) -> "DriftSettings":
        settings = cls(
            features=tuple(cfg.get("stream.prediction_features")),
            window=str(cfg.get("drift.window")),
            bins=int(cfg.get("drift.psi_bins")),
            min_rows=int(cfg.get("drift.min_rows")),
            reference_rows=int(cfg.get("drift.reference_rows")),
        )
        parse_interval(settings.window)
        if settings.bins < 2 or settings.min_rows < 1 or settings.reference_rows < 1:
            raise FraudMLError("drift.psi_bins must be >= 2 and drift.min_rows, drift.reference_rows >= 1")
        return settings


@dataclass
class DriftResult:
    """What one drift run did."""

    rows_written: int
    windows: int
    since: pd.Timestamp | None
    max_psi: float
    table_version: int | None


def feature_reference(train: pd.DataFrame) -> pd.DataFrame:
    """Training rows used as the feature reference (oversampled/augmented sources left out)."""
    if SOURCE_COL not in train.columns:
        return train
    keep = train[SOURCE_COL].isna() | train[SOURCE_COL].isin(REFERENCE_SOURCES)
    if not keep.any():
        log.warning("no real/generated rows in the train table: using all %d rows as the reference", len(train))
        return train
    return train[keep]


def score_references(predictions: pd.DataFrame, reference_rows: int) -> dict[str, pd.Series]:
    """First ``reference_rows`` probabilities of each model version, in scoring order."""
    order = [c for c in ("scored_at", "batch_id", "kafka_partition", "kafka_offset") if c in predictions.columns]
    refs = {}
    for version, group in predictions.sort_values(order, kind="stable").groupby("model_version", sort=True):
        refs[str(version)] = group[SCORE_FEATURE].head(reference_rows).reset_index(drop=True)
    return refs


class ScoreReferences:
    """The score reference of each model version, kept across passes of ``jobs/drift.py --every``.

    A version's reference is its first ``reference_rows`` predictions; once complete it never
    changes, so only versions still short of it are read again. Reading every prediction of
    the version on each pass made a pass cost grow with the table (a minute of traffic at
    1,000 tx/s adds 60,000 rows).
    """

    def __init__(self, reference_rows: int) -> None:
        self.reference_rows = reference_rows
        self.refs: dict[str, pd.Series] = {}

    def update(self, predictions_path: str, versions: list[str]) -> dict[str, pd.Series]:
        """References of ``versions``, reading the table only for the incomplete ones."""
        missing = [v for v in versions if len(self.refs.get(v, ())) < self.reference_rows]
        if missing:
            history = read_columns(
                predictions_path,
                ["model_version", "scored_at", "batch_id", "kafka_partition", "kafka_offset", SCORE_FEATURE],
                filter=pds.field("model_version").isin(missing),
            )
            self.refs.update(score_references(history, self.reference_rows))
        return {v: self.refs[v] for v in versions if v in self.refs}


def compute_drift(
    predictions: pd.DataFrame,
    reference: pd.DataFrame,
    score_refs: dict[str, pd.Series],
    settings: DriftSettings,
    computed_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """PSI rows (see ``DRIFT_SCHEMA``) for every window of ``predictions`` with enough rows.

    ``predictions`` needs scored_at, model_version, probability and the features;
    ``reference`` the training features; ``score_refs`` maps model version to its
    reference probabilities (:func:`score_references`).
    """
    computed_at = computed_at or pd.Timestamp.now(tz="UTC")
    delta = parse_interval(settings.window)
    features = [f for f in settings.features if f in predictions.columns and f in reference.columns]
    missing = sorted(set(settings.features) - set(features))
    if missing:
        log.warning("features %s are not in both predictions and train: no PSI for them", missing)
    feature_edges = {}
    for f in features:
        ref = reference[f].dropna()
        if len(ref):
            feature_edges[f] = (psi_edges(ref, settings.bins), ref)
    score_edges = {v: (psi_edges(r, settings.bins), r) for v, r in score_refs.items() if len(r.dropna())}
    out: list[dict] = []
    if predictions.empty:
        return _drift_frame(out)
    windows = predictions["scored_at"].dt.floor(delta)
    for start, group in predictions.groupby(windows, sort=True):
        if len(group) < settings.min_rows:
            log.info("window %s has %d rows (< %d): skipped", start, len(group), settings.min_rows)
            continue
        base = {"window_start": start, "window_end": start + delta, "computed_at": computed_at}
        for f, (edges, ref) in feature_edges.items():
            out.append(
                {
                    **base,
                    "feature": f,
                    "model_version": None,
                    "psi": psi(ref, group[f], edges=edges),
                    "rows": len(group),
                    "reference": TRAIN_REFERENCE,
                    "reference_rows": len(ref),
                    "bins": len(edges) - 1,
                }
            )
        for version, vgroup in group.groupby(group["model_version"].astype(str), sort=True):
            if version not in score_edges or len(vgroup) < settings.min_rows:
                continue
            edges, ref = score_edges[version]
            out.append(
                {
                    **base,
                    "feature": SCORE_FEATURE,
                    "model_version": version,
                    "psi": psi(ref, vgroup[SCORE_FEATURE], edges=edges),
                    "rows": len(vgroup),
                    "reference": f"first {len(ref)} predictions of model version {version}",
                    "reference_rows": len(ref),
                    "bins": len(edges) - 1,
                }
            )
    return _drift_frame(out)


def _drift_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=DRIFT_SCHEMA.names)
    for c in ("window_start", "window_end", "computed_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
    return frame.astype({"rows": "int64", "reference_rows": "int64", "bins": "int32", "psi": "float64"})


def run_drift(cfg: Config, full: bool = False, references: ScoreReferences | None = None) -> DriftResult:
    """Compute PSI for new windows of ``predictions`` and write them to the ``drift`` table.

    ``references``: the score references of earlier passes (``jobs/drift.py --every`` keeps one).
    """
    from deltalake import write_deltalake

    settings = DriftSettings.from_config(cfg)
    pred_path, train_path, drift_path = (cfg.table_path(t) for t in ("predictions", "train", "drift"))
    if table_version(pred_path) is None:
        raise FraudMLError(f"no predictions table at {pred_path}: start the stream first (make demo)")
    since = None if full else _last_window(drift_path)
    columns = ["scored_at", "batch_id", "model_version", SCORE_FEATURE, *settings.features]
    flt = pds.field("scored_at") >= pa.scalar(since.to_pydatetime(), type=_TS) if since is not None else None
    predictions = read_columns(pred_path, columns, filter=flt)
    log.info("drift: %d prediction rows since %s", len(predictions), since if since is not None else "the start")
    if predictions.empty:
        return DriftResult(0, 0, since, math.nan, table_version(drift_path))
    if table_version(train_path) is None:
        log.warning("no train table at %s: feature PSI skipped, score PSI only", train_path)
        reference = pd.DataFrame(columns=list(settings.features))
    else:
        reference = feature_reference(read_columns(train_path, [*settings.features, SOURCE_COL]))
    versions = sorted(predictions["model_version"].dropna().astype(str).unique())
    refs = (references or ScoreReferences(settings.reference_rows)).update(pred_path, versions)
    drift = compute_drift(predictions, reference, refs, settings)
    if drift.empty:
        log.info("drift: no window with >= %d rows yet", settings.min_rows)
        return DriftResult(0, 0, since, math.nan, table_version(drift_path))
    table = pa.Table.from_pandas(drift, schema=DRIFT_SCHEMA, preserve_index=False)
    if since is None:
        write_deltalake(drift_path, table, mode="overwrite", schema_mode="overwrite")
    else:
        cutoff = since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        write_deltalake(drift_path, table, mode="overwrite", predicate=f"window_start >= '{cutoff}'")
    windows = drift["window_start"].nunique()
    max_psi = float(drift["psi"].max())
    log.info("drift: wrote %d PSI rows for %d windows to %s (max PSI %.3f)", len(drift), windows, drift_path, max_psi)
    return DriftResult(len(drift), windows, since, max_psi, table_version(drift_path))


def _last_window(drift_path: str) -> pd.Timestamp | None:
    """Start of the newest window already in the drift table (recomputed on the next run)."""
    if table_version(drift_path) is None:
        return None
    starts = read_columns(drift_path, ["window_start"])["window_start"]
    return None if starts.empty else pd.Timestamp(starts.max())
