import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from pyspark.sql import functions as F
from sklearn.metrics import average_precision_score

from fraud_ml.errors import DataSchemaError
from fraud_ml.schema import FEATURES, ID_COL, KAGGLE_COLUMNS, LABEL, SOURCE_COL
from fraud_ml.training.data import (
    SyntheticCreditCardGenerator,
    extract_creditcard,
    resolve_columns,
    stratified_split,
    synthetic_dataframe,
)


def _kaggle_frame(n=40, seed=0):
    frame = SyntheticCreditCardGenerator(n_rows=n, fraud_rate=0.1, seed=seed).generate()
    return frame


def test_resolve_columns_strips_bom_quotes_and_index():
    raw = ['\ufeff""', *[f'"{c}"' for c in KAGGLE_COLUMNS]]
    mapping = resolve_columns(raw)
    assert sorted(mapping.values()) == sorted(KAGGLE_COLUMNS)
    assert resolve_columns(["\ufeffTime", *KAGGLE_COLUMNS[1:]])["\ufeffTime"] == "Time"


@pytest.mark.parametrize(
    "columns, message",
    [
        (KAGGLE_COLUMNS[:-1], "missing Class"),
        ([*KAGGLE_COLUMNS, "Merchant"], "unexpected Merchant"),
        ([c.lower() for c in KAGGLE_COLUMNS], "missing Time"),
        (["Time", "Time", *KAGGLE_COLUMNS[1:]], "appears twice"),
    ],
)
def test_resolve_columns_rejects_wrong_columns(columns, message):
    with pytest.raises(DataSchemaError, match=message):
        resolve_columns(columns)


def test_extract_tolerates_bom_index_float_labels_and_duplicates(spark, tmp_path):
    frame = _kaggle_frame()
    frame[LABEL] = frame[LABEL].astype(float)  # "1.0" / "0.0" labels
    with_dupes = pd.concat([frame, frame.head(5)], ignore_index=True)
    path = tmp_path / "creditcard.csv"
    with_dupes.to_csv(path, index=True, encoding="utf-8-sig")  # BOM + unnamed index column
    df = extract_creditcard(spark, str(path))
    out = df.toPandas()
    assert list(out.columns) == [ID_COL, *KAGGLE_COLUMNS, SOURCE_COL]
    assert len(out) == len(frame)  # the five duplicates are gone
    assert out[ID_COL].is_unique and (out[SOURCE_COL] == "real").all()
    assert out[LABEL].dtype.kind == "i" and out[LABEL].sum() == frame[LABEL].sum()
    np.testing.assert_allclose(np.sort(out["Amount"].to_numpy()), np.sort(frame["Amount"].to_numpy()))


def test_extract_keeps_duplicates_when_asked(spark, tmp_path):
    frame = _kaggle_frame(10)
    path = tmp_path / "c.csv"
    pd.concat([frame, frame.head(2)]).to_csv(path, index=False)
    assert extract_creditcard(spark, str(path), drop_duplicates=False).count() == 12


def test_extract_rejects_wrong_columns_and_values(spark, tmp_path):
    frame = _kaggle_frame(10)
    bad_cols = tmp_path / "cols.csv"
    frame.rename(columns={"V7": "V7x"}).to_csv(bad_cols, index=False)
    with pytest.raises(DataSchemaError, match="missing V7; unexpected V7x"):
        extract_creditcard(spark, str(bad_cols))
    bad_values = tmp_path / "values.csv"
    text = frame.astype(object)
    text.loc[3, "V2"] = "abc"
    text.to_csv(bad_values, index=False)
    with pytest.raises(DataSchemaError, match="non-numeric"):
        extract_creditcard(spark, str(bad_values))
    bad_label = tmp_path / "label.csv"
    frame.assign(Class=frame[LABEL] * 2).to_csv(bad_label, index=False)
    with pytest.raises(DataSchemaError, match="Class must be 0 or 1"):
        extract_creditcard(spark, str(bad_label))
    with pytest.raises(DataSchemaError, match="not found"):
        extract_creditcard(spark, str(tmp_path / "absent.csv"))


def test_generator_has_kaggle_shape_and_realistic_difficulty():
    gen = SyntheticCreditCardGenerator(n_rows=60000, fraud_rate=0.00172, seed=7)
    frame = gen.generate()
    assert list(frame.columns) == KAGGLE_COLUMNS
    assert frame[LABEL].sum() == round(60000 * 0.00172)
    assert frame["Time"].between(0, 172800).all() and frame["Time"].is_monotonic_increasing
    assert (frame["Amount"] >= 0).all() and frame["Amount"].max() > 20 * frame["Amount"].median()  # heavy tail
    assert frame.equals(SyntheticCreditCardGenerator(n_rows=60000, fraud_rate=0.00172, seed=7).generate())
    # Overlapping classes: a model is good but not perfect on held-out rows.
    big = SyntheticCreditCardGenerator(n_rows=120000, fraud_rate=0.01, seed=3).generate()
    train, test = big.iloc[::2], big.iloc[1::2]
    model = xgb.XGBClassifier(n_estimators=60, max_depth=4, n_jobs=2).fit(train[FEATURES], train[LABEL])
    ap = average_precision_score(test[LABEL], model.predict_proba(test[FEATURES])[:, 1])
    assert 0.4 < ap < 0.97, ap


def test_synthetic_dataframe_is_labelled_generated(spark):
    df = synthetic_dataframe(spark, 500, 0.02, seed=1)
    assert df.select(SOURCE_COL).distinct().collect()[0][0] == "generated"
    assert df.select(ID_COL).distinct().count() == 500


def test_stratified_split_is_exact_and_reproducible(spark):
    df = synthetic_dataframe(spark, 5000, 0.02, seed=11)
    fractions = {"train": 0.6, "validation": 0.2, "test": 0.2}
    first = stratified_split(df, fractions, seed=5)
    counts = {(r["split"], r[LABEL]): r["count"] for r in first.groupBy("split", LABEL).count().collect()}
    assert counts[("train", 1)] == 60 and counts[("validation", 1)] == 20 and counts[("test", 1)] == 20
    assert counts[("train", 0)] == 2940 and counts[("validation", 0)] == 980 and counts[("test", 0)] == 980
    again = stratified_split(df, fractions, seed=5).select(ID_COL, "split")
    assert again.exceptAll(first.select(ID_COL, "split")).count() == 0
    other = stratified_split(df, fractions, seed=6).select(ID_COL, "split")
    assert other.exceptAll(first.select(ID_COL, "split")).count() > 0
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(df, {"train": 0.5, "test": 0.2}, seed=1)


def test_real_sample_extracts(spark, sample_csv):
    df = extract_creditcard(spark, str(sample_csv))
    frauds = df.filter(F.col(LABEL) == 1).count()
    assert 450 <= frauds <= 492 and df.count() > 1600
