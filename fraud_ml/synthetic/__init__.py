"""Synthetic fraud rows (SMOTE, WGAN-GP, conditional WGAN-GP), the stream composer and quality reports.

Every synthetic row carries ``source`` = ``smote`` / ``wgan`` / ``cwgan``.
The WGAN module needs torch; it is imported lazily so SMOTE, the composer
and the quality report work without it.
"""

from __future__ import annotations

from fraud_ml.features import real_rows
from fraud_ml.schema import SOURCE_CWGAN, SOURCE_SMOTE, SOURCE_WGAN, SYNTHETIC_SOURCES
from fraud_ml.synthetic.composer import (
    StreamPlan,
    compose_stream,
    plan_stream,
    stream_summary,
)
from fraud_ml.synthetic.frames import synthetic_ids, synthetic_rows
from fraud_ml.synthetic.quality import (
    QualityReport,
    c2st,
    c2st_auc,
    feature_distances,
    nearest_neighbour_ratio,
    plot_pca,
    quality_report,
    tstr,
)
from fraud_ml.synthetic.smote import SmoteOversampler, smote_table

__all__ = [
    "SOURCE_CWGAN",
    "SOURCE_SMOTE",
    "SOURCE_WGAN",
    "SYNTHETIC_SOURCES",
    "QualityReport",
    "SmoteOversampler",
    "StreamPlan",
    "WGANGP",
    "c2st",
    "c2st_auc",
    "compose_stream",
    "feature_distances",
    "gradient_penalty",
    "nearest_neighbour_ratio",
    "plan_stream",
    "plot_pca",
    "quality_report",
    "real_rows",
    "smote_table",
    "stream_summary",
    "synthetic_ids",
    "synthetic_rows",
    "tstr",
]


def __getattr__(name: str):
    if name in ("WGANGP", "gradient_penalty"):
        from fraud_ml.synthetic import wgan

        return getattr(wgan, name)
    raise AttributeError(f"module 'fraud_ml.synthetic' has no attribute {name!r}")
