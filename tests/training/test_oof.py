"""fraud_ml.training.oof: every row held out once, counts summed over the folds."""

from fraud_ml.training.data import SyntheticCreditCardGenerator
from fraud_ml.training.oof import out_of_fold_estimate


def test_every_row_is_held_out_once_and_counted(base_config):
    frame = SyntheticCreditCardGenerator(n_rows=3000, fraud_rate=0.05, seed=5).generate()
    cfg = base_config.with_overrides(["train.xgboost.n_estimators=20", "train.xgboost.n_jobs=1"], env={})
    est = out_of_fold_estimate(frame, cfg, folds=3)
    assert est.normals == int((frame["Class"] == 0).sum()) and est.frauds == int((frame["Class"] == 1).sum())
    assert 0 <= est.false_positives <= est.normals and 0 < est.true_positives <= est.frauds
    assert est.fpr == est.false_positives / est.normals and est.recall == est.true_positives / est.frauds
    lo, hi = est.fpr_ci95
    assert lo <= est.fpr <= hi
    assert len(est.thresholds) == len(est.ap_per_fold) == 3 and all(0 < t < 1 for t in est.thresholds)
    assert "false-positive rate" in est.lines()[1]
