"""Out-of-fold estimate of the champion recipe's false-positive rate and recall on real rows.

A test split of the real sample holds ~246 normals: too few to see a 0.3 % false-positive
rate. Here every real row is held out once: stratified K folds over the whole frame; in
each, the remaining rows are split like ``data.split`` (train : validation), the champion
recipe runs on them (``fraud_ml.training.champion.fit_champion``: XGBoost with
``train.xgboost`` plus overrides, prior correction to ``train.production_fraud_rate``, the
threshold by ``train.threshold.*``) and the held-out fold is scored at that threshold. The
counts over all folds give the FPR on every real normal and the recall on every fraud, with
Wilson 95 % intervals.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from fraud_ml.config import Config
from fraud_ml.features import feature_matrix
from fraud_ml.schema import LABEL
from fraud_ml.training.calibration import wilson_interval
from fraud_ml.training.champion import fit_champion

log = logging.getLogger(__name__)


@dataclass
class OutOfFoldEstimate:
    """Counts over every held-out row, and what they give."""

    folds: int
    normals: int
    frauds: int
    false_positives: int
    true_positives: int
    fpr: float
    fpr_ci95: tuple[float, float]
    recall: float
    recall_ci95: tuple[float, float]
    ap_per_fold: list[float]
    thresholds: list[float]

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        lo, hi = self.fpr_ci95
        rlo, rhi = self.recall_ci95
        return [
            f"out of fold over {self.folds} folds: {self.normals:,} real normals, {self.frauds:,} real frauds",
            f"false-positive rate {100 * self.fpr:.3f}% ({self.false_positives} of {self.normals:,}; "
            f"95% CI {100 * lo:.3f}-{100 * hi:.3f}%)",
            f"recall {self.recall:.3f} ({self.true_positives} of {self.frauds:,}; 95% CI {rlo:.3f}-{rhi:.3f})",
            f"AP per fold {', '.join(f'{ap:.3f}' for ap in self.ap_per_fold)} "
            f"(mean {np.mean(self.ap_per_fold):.3f}); thresholds "
            f"{', '.join(f'{t:.4g}' for t in self.thresholds)}",
        ]


def out_of_fold_estimate(
    frame: pd.DataFrame,
    cfg: Config,
    folds: int = 5,
    params: dict | None = None,
    seed: int | None = None,
    tune: bool = False,
) -> OutOfFoldEstimate:
    """Hold out each row once (stratified ``folds``); run the champion recipe on the rest; count.

    With ``tune`` each fold first runs the XGBoost search (``train.tuning.*``, logged to the active
    MLflow store) on its train and validation rows, as ``make train`` does, and fits with the best.
    """
    seed = cfg.get("project.seed") if seed is None else seed
    params = {**cfg.get("train.xgboost"), **(params or {})}
    split = cfg.get("data.split")
    validation_share = split["validation"] / (split["train"] + split["validation"])
    y = frame[LABEL].to_numpy().astype(int)
    fp = tp = 0
    aps, thresholds = [], []
    for k, (fit_idx, held_idx) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(frame, y)):
        rest, held = frame.iloc[fit_idx], frame.iloc[held_idx]
        train, validation = train_test_split(
            rest, test_size=validation_share, stratify=rest[LABEL], random_state=seed + k
        )
        fold_params = params
        if tune:
            from fraud_ml.training.tuning import XGBoostTuner

            fold_params = {**params, **XGBoostTuner.from_config(cfg).fit(train, validation).best_params_}
        fitted = fit_champion(train, validation, cfg, fold_params, seed)
        threshold = fitted.threshold
        scores = fitted.prior.apply(fitted.booster.inplace_predict(feature_matrix(held)))
        y_held = held[LABEL].to_numpy().astype(int)
        flagged = scores >= threshold
        fp += int((flagged & (y_held == 0)).sum())
        tp += int((flagged & (y_held == 1)).sum())
        aps.append(float(average_precision_score(y_held, scores)))
        thresholds.append(threshold)
        log.info(
            "fold %d/%d: threshold %.4g, %d of %d normals flagged, %d of %d frauds caught, AP %.3f",
            k + 1,
            folds,
            threshold,
            int((flagged & (y_held == 0)).sum()),
            int((y_held == 0).sum()),
            int((flagged & (y_held == 1)).sum()),
            int((y_held == 1).sum()),
            aps[-1],
        )
    normals, frauds = int((y == 0).sum()), int((y == 1).sum())
    return OutOfFoldEstimate(
        folds,
        normals,
        frauds,
        fp,
        tp,
        fp / normals,
        wilson_interval(fp, normals),
        tp / frauds,
        wilson_interval(tp, frauds),
        aps,
        thresholds,
    )
