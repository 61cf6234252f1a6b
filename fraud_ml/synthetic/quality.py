"""How good is a synthetic fraud set? C2ST, TSTR, per-feature distances, copy check and a PCA plot.

* **C2ST** (classifier two-sample test): a classifier tries to tell real from
  synthetic frauds; cross-validated ROC AUC. 0.5 = indistinguishable, near 1.0 =
  trivially separable (a model trained on such rows learns the generator's
  artefacts, not fraud).
* **TSTR** (train on synthetic, test on real): the same model trained on real
  normals + synthetic frauds vs real normals + real frauds (TRTR), both scored
  by average precision on the **real** test split; plus real + synthetic
  ("augmented"). Synthetic rows are never part of an evaluation set.
* **Distances**: per feature, the Wasserstein-1 distance on features
  standardised by the real frauds' mean/std, and the two-sample KS statistic.
* **Copies**: median distance from each synthetic row to its nearest real row,
  divided by the same for real rows among themselves (leave-one-out). Well
  below 1 means the set hugs real rows (SMOTE interpolates between them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud_ml.features import feature_matrix, real_rows
from fraud_ml.schema import FEATURES, LABEL, SOURCE_COL, SYNTHETIC_SOURCES

log = logging.getLogger(__name__)

DEFAULT_TSTR_MODEL: dict[str, Any] = {
    "n_estimators": 200,
    "max_depth": 4,
    "learning_rate": 0.1,
    "subsample": 0.9,
    "colsample_bytree": 0.8,
    "n_jobs": 1,
}


def _subsample(X: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return X if len(X) <= n else X[np.sort(rng.choice(len(X), n, replace=False))]


def _c2st_model(classifier: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classifier == "hgb":
        return HistGradientBoostingClassifier(
            max_iter=60,
            learning_rate=0.15,
            max_leaf_nodes=15,
            min_samples_leaf=10,
            early_stopping=False,
            random_state=seed,
        )
    if classifier == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    raise ValueError(f"unknown C2ST classifier '{classifier}' (use hgb or logistic)")


def c2st(
    real: pd.DataFrame | np.ndarray,
    synthetic: pd.DataFrame | np.ndarray,
    seed: int = 0,
    cv: int = 5,
    classifier: str = "hgb",
    max_rows: int = 5000,
    threads: int = 1,
) -> dict[str, Any]:
    """Classifier two-sample test: cross-validated ROC AUC of real (0) vs synthetic (1).

    Both sides are subsampled to the same size (at most ``max_rows``) so the AUC
    is not driven by class balance. ``classifier``: ``hgb`` (gradient-boosted
    trees, catches non-linear artefacts) or ``logistic`` (standardised linear).
    ``threads`` caps OpenMP/BLAS threads (oversubscription is very slow on a shared CPU).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    A, B = feature_matrix(real, dtype=np.float64), feature_matrix(synthetic, dtype=np.float64)
    n = min(len(A), len(B), int(max_rows))
    if n < cv:
        raise ValueError(f"C2ST needs at least {cv} rows on each side, got {len(A)} real and {len(B)} synthetic")
    X = np.vstack([_subsample(A, n, rng), _subsample(B, n, rng)])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    with threadpool_limits(limits=max(1, int(threads))):
        scores = cross_val_score(_c2st_model(classifier, seed), X, y, cv=folds, scoring="roc_auc")
    return {
        "auc": float(scores.mean()),
        "auc_std": float(scores.std()),
        "n_per_class": int(n),
        "classifier": classifier,
        "folds": int(cv),
    }


def c2st_auc(
    real: pd.DataFrame | np.ndarray,
    synthetic: pd.DataFrame | np.ndarray,
    seed: int = 0,
    cv: int = 5,
    classifier: str = "hgb",
) -> float:
    """Cross-validated ROC AUC of a real-vs-synthetic classifier (0.5 = indistinguishable)."""
    return c2st(real, synthetic, seed=seed, cv=cv, classifier=classifier)["auc"]


def feature_distances(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Per feature: Wasserstein-1 on real-standardised values, KS statistic and p-value, means and stds."""
    from scipy.stats import ks_2samp, wasserstein_distance

    columns = columns or FEATURES
    rows = []
    for col in columns:
        a = real[col].to_numpy(dtype=np.float64)
        b = synthetic[col].to_numpy(dtype=np.float64)
        mu, sd = a.mean(), a.std()
        sd = sd if sd > 1e-12 else 1.0
        ks = ks_2samp(a, b)
        rows.append(
            {
                "feature": col,
                "wasserstein": float(wasserstein_distance((a - mu) / sd, (b - mu) / sd)),
                "ks_stat": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "mean_real": float(a.mean()),
                "mean_synthetic": float(b.mean()),
                "std_real": float(a.std()),
                "std_synthetic": float(b.std()),
            }
        )
    return pd.DataFrame(rows).set_index("feature")


def nearest_neighbour_ratio(
    real: pd.DataFrame | np.ndarray, synthetic: pd.DataFrame | np.ndarray, seed: int = 0, max_rows: int = 5000
) -> dict[str, float]:
    """Median synthetic->nearest-real distance over median real->nearest-other-real distance (standardised)."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    A = _subsample(feature_matrix(real, dtype=np.float64), max_rows, rng)
    B = _subsample(feature_matrix(synthetic, dtype=np.float64), max_rows, rng)
    mu, sd = A.mean(axis=0), A.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    A, B = (A - mu) / sd, (B - mu) / sd
    nn = NearestNeighbors(n_neighbors=2, algorithm="kd_tree").fit(A)  # exact distances (0 for copies)
    d_real = nn.kneighbors(A, n_neighbors=2)[0][:, 1]
    d_syn = nn.kneighbors(B, n_neighbors=1)[0][:, 0]
    real_med = float(np.median(d_real))
    return {
        "dcr_synthetic_median": float(np.median(d_syn)),
        "dcr_real_median": real_med,
        "dcr_ratio": float(np.median(d_syn) / real_med) if real_med > 0 else float("nan"),
        "exact_copy_share": float(np.mean(d_syn < 1e-8)),
    }


def _fit_ap(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, params: dict[str, Any], seed: int
) -> float:
    from sklearn.metrics import average_precision_score
    from xgboost import XGBClassifier

    model = XGBClassifier(
        **{**DEFAULT_TSTR_MODEL, **params}, tree_method="hist", random_state=seed, eval_metric="aucpr"
    )
    model.fit(X_train, y_train)
    return float(average_precision_score(y_test, model.predict_proba(X_test)[:, 1]))


def tstr(
    synthetic_frauds: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    seed: int = 0,
    model_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Average precision on the real ``test`` rows of XGBoost trained three ways.

    ``tstr_ap``: real train normals + synthetic frauds (as many as the real train
    frauds, drawn without replacement when there are enough); ``trtr_ap``: real
    train normals + real train frauds; ``augmented_ap``: both fraud sets.
    ``test`` must not contain synthetic rows (ValueError otherwise).
    """
    if SOURCE_COL in test.columns and test[SOURCE_COL].isin(SYNTHETIC_SOURCES).any():
        raise ValueError("TSTR is evaluated on real rows only: the test set contains synthetic rows")
    params = dict(model_params or {})
    rng = np.random.default_rng(seed)
    real_train = real_rows(train)
    normals = feature_matrix(real_train[real_train[LABEL] == 0], dtype=np.float64)
    frauds = feature_matrix(real_train[real_train[LABEL] == 1], dtype=np.float64)
    syn = feature_matrix(synthetic_frauds, dtype=np.float64)
    if len(frauds) == 0 or len(normals) == 0 or len(syn) == 0:
        raise ValueError("TSTR needs real train normals, real train frauds and synthetic frauds")
    syn = _subsample(syn, len(frauds), rng)
    X_test, y_test = feature_matrix(test, dtype=np.float64), test[LABEL].to_numpy().astype(int)
    if y_test.sum() == 0:
        raise ValueError("TSTR needs frauds in the test rows")

    def run(fraud_sets: list[np.ndarray]) -> float:
        X = np.vstack([normals, *fraud_sets])
        y = np.r_[np.zeros(len(normals), dtype=int), np.ones(sum(len(f) for f in fraud_sets), dtype=int)]
        return _fit_ap(X, y, X_test, y_test, params, seed)

    result = {
        "tstr_ap": run([syn]),
        "trtr_ap": run([frauds]),
        "augmented_ap": run([frauds, syn]),
        "train_normals": int(len(normals)),
        "train_real_frauds": int(len(frauds)),
        "train_synthetic_frauds": int(len(syn)),
        "test_rows": int(len(y_test)),
        "test_frauds": int(y_test.sum()),
        "test_prevalence": float(y_test.mean()),
    }
    result["tstr_ratio"] = result["tstr_ap"] / result["trtr_ap"] if result["trtr_ap"] > 0 else float("nan")
    return result


def plot_pca(real: pd.DataFrame, synthetic: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Scatter of real vs synthetic frauds on the first two principal components of the real ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    A, B = feature_matrix(real, dtype=np.float64), feature_matrix(synthetic, dtype=np.float64)
    n_shown = len(B)
    B = _subsample(B, max(3 * len(A), 300), np.random.default_rng(0))  # keep the real rows visible
    mu, sd = A.mean(axis=0), A.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    pca = PCA(n_components=2, random_state=0).fit((A - mu) / sd)
    pa, pb = pca.transform((A - mu) / sd), pca.transform((B - mu) / sd)
    fig, ax = plt.subplots(figsize=(6.4, 5.0), dpi=110)
    ax.scatter(
        pb[:, 0],
        pb[:, 1],
        s=10,
        alpha=0.35,
        color="#ff7f0e",
        marker="x",
        zorder=1,
        label=f"synthetic ({len(B)} of {n_shown} shown)",
    )
    ax.scatter(pa[:, 0], pa[:, 1], s=14, alpha=0.85, color="#1f4e99", zorder=2, label=f"real frauds (n={len(A)})")
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 of real frauds ({ev[0]:.0%} var.)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} var.)")
    ax.set_title(title or "real vs synthetic frauds (PCA)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def verdict(c2st_value: float, dcr_ratio: float | None = None) -> str:
    """A one-line plain-language reading of the C2ST AUC (and the copy check)."""
    if c2st_value < 0.6:
        text = "hard to tell from real frauds (C2ST AUC < 0.6)"
    elif c2st_value < 0.8:
        text = "partly distinguishable from real frauds (0.6 <= C2ST AUC < 0.8)"
    elif c2st_value < 0.95:
        text = "easy to tell from real frauds (0.8 <= C2ST AUC < 0.95): metrics measured on these rows are optimistic"
    else:
        text = "trivially separable from real frauds (C2ST AUC >= 0.95): do not evaluate on these rows"
    if dcr_ratio is not None and np.isfinite(dcr_ratio) and dcr_ratio < 0.5:
        text += "; rows sit unusually close to real rows (near copies)"
    return text


@dataclass
class QualityReport:
    """Flat ``summary`` (metrics, counts, verdict) plus the per-feature ``distances`` table."""

    method: str
    summary: dict[str, Any]
    distances: pd.DataFrame
    plot_path: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Numeric entries of the summary (for MLflow)."""
        return {
            k: float(v)
            for k, v in self.summary.items()
            if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
        }

    def to_json(self) -> str:
        payload = {"summary": self.summary, "distances": self.distances.reset_index().to_dict(orient="records")}
        return json.dumps(payload, indent=2, default=float)


def quality_report(
    real_frauds: pd.DataFrame,
    synthetic_frauds: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    method: str,
    seed: int = 0,
    cv: int = 5,
    classifier: str = "hgb",
    model_params: dict[str, Any] | None = None,
    max_rows: int = 5000,
    out_dir: str | Path | None = None,
    reference: str = "",
) -> QualityReport:
    """C2ST, TSTR, distances and copy check of ``synthetic_frauds`` against ``real_frauds``.

    ``real_frauds``: the real rows the generator learnt from (the reference);
    ``train``/``test``: real split rows for TSTR. With ``out_dir`` the JSON,
    the distances CSV and the PCA PNG are written there (see ``write_report``).
    """
    test_c2st = c2st(real_frauds, synthetic_frauds, seed=seed, cv=cv, classifier=classifier, max_rows=max_rows)
    distances = feature_distances(real_frauds, synthetic_frauds)
    copies = nearest_neighbour_ratio(real_frauds, synthetic_frauds, seed=seed, max_rows=max_rows)
    ts = tstr(synthetic_frauds, train, test, seed=seed, model_params=model_params)
    summary: dict[str, Any] = {
        "method": method,
        "reference": reference or "real frauds",
        "n_real": int(len(real_frauds)),
        "n_synthetic": int(len(synthetic_frauds)),
        "c2st_auc": test_c2st["auc"],
        "c2st_auc_std": test_c2st["auc_std"],
        "c2st_classifier": classifier,
        "c2st_n_per_class": test_c2st["n_per_class"],
        **ts,
        "mean_wasserstein": float(distances["wasserstein"].mean()),
        "max_wasserstein": float(distances["wasserstein"].max()),
        "worst_feature": str(distances["wasserstein"].idxmax()),
        "mean_ks": float(distances["ks_stat"].mean()),
        "max_ks": float(distances["ks_stat"].max()),
        **copies,
    }
    summary["verdict"] = verdict(summary["c2st_auc"], summary["dcr_ratio"])
    report = QualityReport(method=method, summary=summary, distances=distances)
    log.info(
        "quality[%s]: C2ST AUC %.3f +- %.3f | TSTR AP %.3f vs real %.3f (augmented %.3f) | "
        "mean Wasserstein %.3f (worst %s %.3f) | mean KS %.3f | NN-distance ratio %.2f -> %s",
        method,
        summary["c2st_auc"],
        summary["c2st_auc_std"],
        summary["tstr_ap"],
        summary["trtr_ap"],
        summary["augmented_ap"],
        summary["mean_wasserstein"],
        summary["worst_feature"],
        summary["max_wasserstein"],
        summary["mean_ks"],
        summary["dcr_ratio"],
        summary["verdict"],
    )
    if out_dir is not None:
        write_report(report, real_frauds, synthetic_frauds, out_dir)
    return report


def write_report(
    report: QualityReport, real_frauds: pd.DataFrame, synthetic_frauds: pd.DataFrame, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``<method>_quality.json``, ``<method>_distances.csv`` and ``<method>_pca.png`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = report.method
    json_path = out / f"{m}_quality.json"
    json_path.write_text(report.to_json(), encoding="utf-8")
    csv_path = out / f"{m}_distances.csv"
    report.distances.to_csv(csv_path)
    s = report.summary
    png = plot_pca(
        real_frauds,
        synthetic_frauds,
        out / f"{m}_pca.png",
        title=f"{m}: real vs synthetic frauds (C2ST AUC {s['c2st_auc']:.2f})",
    )
    report.plot_path = png
    report.paths = {"json": json_path, "distances": csv_path, "plot": png}
    return report.paths


def log_report_to_mlflow(report: QualityReport) -> None:
    """Log the numeric summary as ``quality_*`` metrics and the written files as artifacts."""
    import mlflow

    mlflow.log_metrics({f"quality_{k}": v for k, v in report.metrics().items()})
    mlflow.set_tag("quality_verdict", report.summary.get("verdict", ""))
    for path in report.paths.values():
        mlflow.log_artifact(str(path), artifact_path="quality")
