"""The dashboard served by Streamlit on localhost, loaded by headless Chromium, screenshot taken.

Chromium is Debian's ``chromium`` package (scripts/install_browser.sh installs it);
the test skips with the reason when it is absent and cannot be installed.
Set DASHBOARD_SCREENSHOT=/some/path.png to keep the screenshot.
"""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from fraud_ml.local.browser import Chromium, ensure_chromium
from fraud_ml.monitoring.drift import DRIFT_SCHEMA
from fraud_ml.ops.dashboard import StreamlitServer


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(why)
    return path


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.timeout(120)
def test_dashboard_in_headless_chromium(chromium, tmp_path, stream_data, dashboard_panels):
    root = tmp_path / "delta"
    tables = stream_data.write_stream_tables(root, batches=6, rows=150, seed=5)
    t0 = pd.Timestamp("2024-05-01 12:04", tz="UTC")
    drift = pd.DataFrame(
        [
            {
                "window_start": t0,
                "window_end": t0 + pd.Timedelta(minutes=1),
                "feature": f,
                "model_version": None,
                "psi": v,
                "rows": 185,
                "reference": "train",
                "reference_rows": 2700,
                "bins": 10,
                "computed_at": t0,
            }
            for f, v in (("V14", 0.31), ("Amount", 0.04))
        ]
    )
    write_deltalake(str(root / "drift"), pa.Table.from_pandas(drift, schema=DRIFT_SCHEMA, preserve_index=False))
    preds = tables.predictions
    env = {
        "FRAUD_ML__DELTA__ROOT": str(root),
        "FRAUD_ML__DASHBOARD__REFRESH_SECONDS": "3",
        "FRAUD_ML__ALERTS__DASHBOARD_SAMPLE": "0",
    }
    with StreamlitServer(env, tmp_path / "streamlit.log") as server, Chromium(chromium, tmp_path / "profile") as page:
        page.navigate(server.url)
        text = page.wait_for_text(
            [
                "Fraud detection monitor",
                *dashboard_panels,
                "Transactions scored",
                f"{len(preds):,}",
                "Fraud rate per 1 minute",
                "Confusion matrix (whole run",
                "PSI above 0.2",
            ],
            timeout=60,
        )
        # every chart has drawn (Vega renders after the text is in the page)
        page.wait_for("document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= 6", timeout=20)
        shot = page.screenshot(tmp_path / "dashboard.png")
        # the page refreshes itself: a new micro-batch shows up without reloading
        extra = stream_data.make_batch(6, 77, stream_data.base_time + pd.Timedelta(minutes=6), np.random.default_rng(0))
        stream_data.append_batch(root, extra, processing_ms=200.0)
        page.wait_for_text([f"{len(preds) + 77:,}"], timeout=30)
    assert f"{int(preds['decision'].sum()):,}" in text  # flagged
    assert "No predictions yet" not in text and "Traceback" not in text and "Error" not in text
    width, height = png_size(shot)
    assert width >= 1000 and height >= 2000 and shot.stat().st_size > 50_000
    keep = os.environ.get("DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


@pytest.mark.timeout(90)
def test_empty_state_in_headless_chromium(chromium, tmp_path):
    env = {"FRAUD_ML__DELTA__ROOT": str(tmp_path / "no-tables-yet"), "FRAUD_ML__ALERTS__DASHBOARD_SAMPLE": "0"}
    with StreamlitServer(env, tmp_path / "streamlit.log") as server, Chromium(chromium, tmp_path / "profile") as page:
        page.navigate(server.url)
        text = page.wait_for_text(["Fraud detection monitor", "No predictions yet"], timeout=60)
    assert "make demo" in text and "Transactions scored" not in text
