"""A producer's good and bad messages through a drained stream: what the contract e2e tests check."""

from __future__ import annotations

import pandas as pd
from deltalake import DeltaTable

from fraud_ml.schema import ID_COL


def drain_and_check(spark, cfg, good: pd.DataFrame, bad: dict[str, tuple[bytes | None, bytes]]) -> pd.DataFrame:
    """Send ``bad`` (reason -> (key, value)), drain the topic with the stream, check every good row is
    scored with its label and every bad value quarantined with its reason; return the predictions."""
    from fraud_ml.streaming.producer import send_raw
    from fraud_ml.streaming.query import run_stream

    send_raw(list(bad.values()), cfg)
    run_stream(spark, cfg, available_now=True)
    preds = DeltaTable(cfg.table_path("predictions")).to_pandas()
    quarantine = DeltaTable(cfg.table_path("quarantine")).to_pandas()
    assert len(preds) == len(good) and set(preds[ID_COL]) == set(good[ID_COL])
    merged = preds.merge(good[[ID_COL, "Class"]], on=ID_COL)
    assert (merged["label"] == merged["Class"]).all()
    assert sorted(quarantine["reason"]) == sorted(bad)
    return preds
