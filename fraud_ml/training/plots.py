"""Small matplotlib figures logged as MLflow artifacts: PR curve, confusion matrix, model comparison.

Every function writes one PNG (Agg backend, no display needed) and returns its path.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402


@contextmanager
def _figure(path: Path, size: tuple[float, float]) -> Iterator:
    """One figure's axes; on exit the figure is laid out, saved to ``path`` and closed."""
    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        yield ax
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def save_pr_curve(
    path: str | Path, y_true: np.ndarray, scores: np.ndarray, threshold: float, title: str = "Precision-recall (test)"
) -> Path:
    """Precision-recall curve with the operating point at ``threshold`` marked."""
    path = Path(path)
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    with _figure(path, (5, 4)) as ax:
        if y_true.sum() > 0:
            precision, recall, _ = precision_recall_curve(y_true, scores)
            ax.step(recall, precision, where="post", color="tab:blue", label="PR curve")
            pred = scores >= threshold
            tp = int((pred & (y_true == 1)).sum())
            p_at = tp / max(int(pred.sum()), 1)
            r_at = tp / int(y_true.sum())
            ax.scatter([r_at], [p_at], color="tab:red", zorder=3, label=f"threshold {threshold:.3f}")
            ax.axhline(y_true.mean(), color="grey", linestyle=":", label=f"base rate {y_true.mean():.4f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02), title=title)
        ax.legend(loc="lower left", fontsize=8)
    return path


def save_confusion_matrix(
    path: str | Path, metrics: Mapping[str, float], title: str = "Confusion matrix (test)"
) -> Path:
    """2x2 confusion matrix from the ``tn/fp/fn/tp`` counts of ``fraud_ml.training.pyfunc_model.evaluate``."""
    path = Path(path)
    cells = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]], dtype=float)
    with _figure(path, (4, 3.6)) as ax:
        ax.imshow(np.log1p(cells), cmap="Blues")
        for (i, j), value in np.ndenumerate(cells):
            ax.text(
                j,
                i,
                f"{int(value):,}",
                ha="center",
                va="center",
                color="white" if np.log1p(value) > np.log1p(cells).max() / 2 else "black",
            )
        ax.set_xticks([0, 1], ["normal", "fraud"])
        ax.set_yticks([0, 1], ["normal", "fraud"])
        ax.set(xlabel="predicted", ylabel="actual", title=title)
    return path


def save_comparison_plot(
    path: str | Path, table: pd.DataFrame, model_order: list[str] | None = None, variant_order: list[str] | None = None
) -> Path:
    """Grouped bars of test F1, test AUPRC and training seconds per model x data variant."""
    path = Path(path)
    panels = [
        ("f1", "F1 at threshold (test)"),
        ("average_precision", "AUPRC (test)"),
        ("training_seconds", "training time (s)"),
    ]
    present_models, present_variants = set(table["model"]), set(table["variant"])
    models = [m for m in (model_order or []) if m in present_models]
    models += [m for m in dict.fromkeys(table["model"]) if m not in models]
    variants = [v for v in (variant_order or []) if v in present_variants]
    variants += [v for v in dict.fromkeys(table["variant"]) if v not in variants]
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(models))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), dpi=100)
    try:
        for ax, (column, label) in zip(axes, panels):
            for k, variant in enumerate(variants):
                rows = table[table["variant"] == variant].set_index("model")
                values = [float(rows.at[m, column]) if m in rows.index else np.nan for m in models]
                ax.bar(x + (k - (len(variants) - 1) / 2) * width, values, width, label=variant)
            ax.set_xticks(x, models, rotation=20, fontsize=8)
            ax.set_title(label, fontsize=10)
            if column != "training_seconds":
                low = np.nanmin(table[column].to_numpy(dtype=float)) if len(table) else 0.0
                ax.set_ylim(max(0.0, min(low - 0.05, 0.9)), 1.0)
        axes[0].legend(title="data", fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def save_reliability_diagram(
    path: str | Path,
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    weights: np.ndarray | None = None,
    bins: int = 10,
    title: str = "Reliability at the production fraud rate (validation)",
) -> Path:
    """Mean predicted vs observed fraud rate per probability bin, one line per score; ECE in the legend."""
    from fraud_ml.training.calibration import reliability

    path = Path(path)
    with _figure(path, (5, 4)) as ax:
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        for name, values in scores.items():
            predicted, observed, weight, ece = reliability(y_true, values, weights, bins)
            filled = weight > 0
            ax.plot(predicted[filled], observed[filled], marker="o", label=f"{name} (ECE {ece:.4f})")
        ax.set(
            xlabel="mean predicted probability", ylabel="observed fraud rate", xlim=(0, 1), ylim=(0, 1.02), title=title
        )
        ax.legend(loc="upper left", fontsize=8)
    return path
