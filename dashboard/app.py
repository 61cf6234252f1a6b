"""Live fraud-monitoring dashboard on the streaming job's Delta tables.

    streamlit run dashboard/app.py -- [--conf conf/local.yaml] [--set dashboard.refresh_seconds=2]

Read-only: the tables are read with the ``deltalake`` package (no Spark, no JVM),
incrementally (only data files added since the last refresh, only the needed
columns), and the live panels re-run every ``dashboard.refresh_seconds`` inside
an ``st.fragment``. Panels: totals and fraud rate per interval, live quality
(whole run and recent window), latency and measured throughput, recent alerts,
score distribution, drift (PSI from the ``drift`` table written by jobs/drift.py).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from fraud_ml.config import Config, load_config  # noqa: E402
from fraud_ml.errors import FraudMLError  # noqa: E402
from fraud_ml.monitoring.alerts_feed import alert_latency, read_recent_alerts  # noqa: E402
from fraud_ml.monitoring.latency import (
    LATENCY_PERCENTILE_COLUMNS,
    latency_bin_labels,
    latency_over_time,
    throughput,
)
from fraud_ml.monitoring.live import DashboardSettings, LiveMonitor, Snapshot
from fraud_ml.monitoring.psi import drift_latest_window, drift_over_time
from fraud_ml.monitoring.quality import (
    describe_interval,
    fraud_rate_per_interval,
    latest_alerts,
    quality_from_aggregates,
    recent,
    score_histogram_frame,
    totals,
)

log = logging.getLogger("dashboard")

TITLE = "Fraud detection monitor"
EMPTY_MESSAGE = (
    "No predictions yet — start the stream with `make demo` (Kafka, producer and the streaming "
    "scoring job); this page fills in by itself once the first micro-batch is committed."
)
NO_METRICS_MESSAGE = "No batch metrics yet — the streaming job writes one `batch_metrics` row per micro-batch."
NO_DRIFT_MESSAGE = (
    "No drift table yet — compute it with `python jobs/drift.py` (PSI per window against the "
    "training reference; add `--every 60` to keep it updated)."
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``--conf`` and ``--set`` given after ``--`` on the streamlit command line; other args are ignored."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--conf", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args, _ = parser.parse_known_args(argv)
    return args


@st.cache_resource(show_spinner=False)
def get_monitor(predictions_path: str, metrics_path: str, drift_path: str, score_bins: int) -> LiveMonitor:
    """One incremental monitor per set of tables, shared by all browser sessions."""
    return LiveMonitor(predictions_path, metrics_path, drift_path, score_bins=score_bins)


# ----------------------------------------------------------------------------- formatting
def fmt_int(value: float) -> str:
    """``12,345``."""
    return f"{int(value):,}"


def fmt_ratio(value: float) -> str:
    """Three decimals, or ``n/a`` when undefined."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def fmt_pct(value: float) -> str:
    """Percent with three decimals, or ``n/a``."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.3f}%"


def fmt_rate(value: float) -> str:
    """Rows per second, or ``n/a``."""
    return "n/a" if value is None or math.isnan(value) else f"{value:,.1f}"


# ----------------------------------------------------------------------------- panels
def render_totals(snap: Snapshot, settings: DashboardSettings) -> None:
    """Transactions scored, flagged, actual frauds and the fraud rate per interval."""
    st.header("Totals")
    t = totals(snap.aggregates)
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    c1.metric("Transactions scored", fmt_int(t["transactions"]))
    c2.metric("Flagged", fmt_int(t["flagged"]))
    c3.metric(
        "Alerts per 10,000",
        fmt_rate(1e4 * t["flagged"] / t["transactions"] if t["transactions"] else math.nan),
        help="Flagged share of the scored transactions: the alert volume analysts work through.",
    )
    c4.metric("Actual frauds", fmt_int(t["frauds"]), help="From the replayed labels (never a model input).")
    c5.metric("Fraud rate (labels)", fmt_pct(t["frauds"] / t["labeled"] if t["labeled"] else math.nan))
    c6.metric(
        "Expected fraud rate (model)",
        fmt_pct(t["expected_frauds"] / t["transactions"] if t["transactions"] else math.nan),
        help=f"Mean stored probability. The champion's probabilities are corrected to the production "
        f"fraud rate {fmt_pct(settings.production_fraud_rate)} (train.production_fraud_rate): on "
        "traffic at that rate the expected and the observed rate agree.",
    )
    words = describe_interval(settings.fraud_rate_interval)
    st.subheader(f"Fraud rate per {words}")
    per = fraud_rate_per_interval(snap.aggregates, settings.fraud_rate_interval)
    st.caption(
        f"Each point is one {words} interval of `scored_at` (UTC): actual fraud rate = frauds / labeled "
        "rows, flag rate = flagged / scored rows, expected fraud rate = mean probability."
    )
    st.line_chart(per[["fraud_rate", "flag_rate", "expected_fraud_rate"]], height=220)
    with st.expander(f"Counts per {words}"):
        st.dataframe(per.reset_index(), hide_index=True, key="fraud_rate_table")


def render_quality(snap: Snapshot, settings: DashboardSettings) -> None:
    """Precision, recall, F1 and confusion matrix, whole run and recent window."""
    st.header("Live quality")
    st.caption(
        "Fraud class at the model's decision threshold, on rows with a replayed label. Precision is that "
        "of the traffic shown, at its own fraud rate (see Totals): replayed test data richer in frauds "
        f"than production ({fmt_pct(settings.production_fraud_rate)}) shows a higher precision than "
        "production would; recall does not depend on the rate."
    )
    window = recent(snap.aggregates, "scored_at", settings.recent_window_minutes)
    scopes = [
        ("whole run", "Whole run", snap.aggregates),
        ("recent", f"Recent window (last {settings.recent_window_minutes:g} min)", window),
    ]
    for column, (key, title, agg) in zip(st.columns(2), scopes):
        q = quality_from_aggregates(agg)
        with column:
            st.subheader(title)
            m1, m2, m3 = st.columns(3)
            m1.metric(f"Precision ({key})", fmt_ratio(q.precision))
            m2.metric(f"Recall ({key})", fmt_ratio(q.recall))
            m3.metric(f"F1 ({key})", fmt_ratio(q.f1))
            st.caption(f"Confusion matrix ({key}, {fmt_int(q.labeled)} labeled rows)")
            st.table(q.confusion_frame())


def render_latency(snap: Snapshot, settings: DashboardSettings) -> None:
    """Per-batch processing time, latency percentiles over time, histogram and measured throughput."""
    st.header("Latency & throughput")
    metrics = snap.metrics
    if metrics is None or metrics.empty:
        st.info(NO_METRICS_MESSAGE)
        return
    whole = throughput(metrics)
    window = throughput(recent(metrics, "committed_at", settings.recent_window_minutes))
    last = metrics.iloc[-1]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "Throughput (rows/s, whole run)",
        fmt_rate(whole["wall_rows_per_s"]),
        help="Measured: scored rows / (last commit − first batch start), from batch_metrics.",
    )
    c2.metric("Throughput (rows/s, recent)", fmt_rate(window["wall_rows_per_s"]))
    c3.metric(
        "Throughput while processing (rows/s)",
        fmt_rate(whole["processing_rows_per_s"]),
        help="Scored rows / summed batch processing time.",
    )
    c4.metric("Latest batch p99 latency (ms)", fmt_rate(last["latency_p99_ms"]))
    over_time = latency_over_time(metrics, settings.chart_points)
    left, right = st.columns(2)
    with left:
        st.subheader("Per-batch processing time (ms)")
        st.line_chart(over_time[["processing_ms"]], height=220)
    with right:
        st.subheader("End-to-end latency p50/p90/p95/p99 (ms)")
        st.line_chart(over_time[LATENCY_PERCENTILE_COLUMNS], height=220)
    st.subheader("End-to-end latency histogram")
    st.caption("Every scored row: Kafka message timestamp → predictions commit of its micro-batch.")
    hist = pd.DataFrame({"latency": latency_bin_labels(), "rows": snap.latency_counts})
    st.altair_chart(
        alt.Chart(hist)
        .mark_bar()
        .encode(
            x=alt.X("latency:N", sort=None, title="end-to-end latency"),
            y=alt.Y("rows:Q", title="rows"),
            tooltip=["latency", "rows"],
        )
        .properties(height=220),
        width="stretch",
    )
    with st.expander("Per-batch numbers (latest 200 batches)"):
        st.dataframe(over_time.tail(200).reset_index(), hide_index=True, key="latency_table")


def render_alerts(snap: Snapshot, settings: DashboardSettings) -> None:
    """The most recent flagged transactions."""
    st.header("Alerts")
    alerts = latest_alerts(snap.flagged, settings.alert_rows)
    if alerts is None or alerts.empty:
        st.info("No flagged transactions yet.")
        return
    columns = ["scored_at", "transaction_id", "probability", "Amount", "model_version", "label"]
    if alerts["reasons"].notna().any():
        columns.append("reasons")
    st.caption(f"The {len(alerts)} most recent flagged transactions (newest first).")
    st.dataframe(alerts[columns], hide_index=True, key="alerts_table")


def render_realtime_alerts(cfg: Config, settings: DashboardSettings) -> None:
    """The real-time alerts path (jobs/alerts.py): latency of the newest alerts on their Kafka topic."""
    from confluent_kafka import KafkaException

    topic, sample = cfg.get("alerts.topic"), int(cfg.get("alerts.dashboard_sample"))
    if sample <= 0:
        return
    st.header("Real-time alerts (Kafka)")
    try:
        alerts = read_recent_alerts(cfg, sample)
    except KafkaException as exc:
        st.warning(f"Could not read the alerts topic {topic} on {cfg.get('kafka.bootstrap_servers')}: {exc}")
        return
    if alerts is None or alerts.empty:
        st.info(
            f"No alerts on {topic} yet: the real-time alerts job (`make alerts`, or `make demo` with `--alerts`) "
            "writes the champion's decision for each transaction there."
        )
        return
    summary = alert_latency(alerts)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Alerts read", fmt_int(summary["alerts"]), help=f"the newest {sample:,} records of {topic} at most")
    c2.metric("Alerts flagged", fmt_int(summary["flagged"]))
    c3.metric("Alert latency p50 (ms)", fmt_rate(summary["latency_p50_ms"]))
    c4.metric("Alert latency p99 (ms)", fmt_rate(summary["latency_p99_ms"]))
    st.caption(
        "Latency: the broker's append time of the alert minus the input transaction's Kafka timestamp. "
        "Real-time mode scores each transaction as it arrives, beside the micro-batch Delta record above."
    )
    newest = alerts.sort_values("alert_ms", ascending=False).head(settings.alert_rows)
    st.dataframe(newest, hide_index=True, key="realtime_alerts_table")


def render_scores(snap: Snapshot, settings: DashboardSettings) -> None:
    """Histogram of probabilities by true label."""
    st.header("Score distribution")
    frame = score_histogram_frame(snap.score_counts, settings.score_bins)
    st.caption(
        "Share of each true class's rows per probability bin (classes are very imbalanced, so each is "
        "normalised to 1); raw counts, unlabeled rows included, below."
    )
    labeled = frame[frame["class"] != "unlabeled"]
    st.altair_chart(
        alt.Chart(labeled)
        .mark_bar(opacity=0.6)
        .encode(
            x=alt.X("bin:N", sort=None, title="probability"),
            y=alt.Y("share:Q", stack=None, title="share of class"),
            color=alt.Color(
                "class:N",
                title="true label",
                scale=alt.Scale(domain=["legit (0)", "fraud (1)"], range=["#4c78a8", "#e45756"]),
            ),
            tooltip=["bin", "class", "count"],
        )
        .properties(height=240),
        width="stretch",
    )
    with st.expander("Counts per bin"):
        wide = frame.pivot_table(index="bin", columns="class", values="count", aggfunc="sum", sort=False)
        st.dataframe(wide.reset_index(), hide_index=True, key="score_table")


def render_drift(snap: Snapshot, settings: DashboardSettings) -> None:
    """PSI of the score and features in the newest window, warning above the threshold, PSI over time."""
    st.header("Drift")
    drift = snap.drift
    if drift is None or drift.empty:
        st.info(NO_DRIFT_MESSAGE)
        return
    latest = drift_latest_window(drift, settings.psi_warning)
    start = latest["window_start"].iloc[0]
    high = latest[latest["psi"] > settings.psi_warning]
    if len(high):
        names = ", ".join(
            f"{r.feature}{'' if pd.isna(r.model_version) else f' (v{r.model_version})'} {r.psi:.3f}"
            for r in high.itertuples()
        )
        st.warning(
            f"Drift: PSI above {settings.psi_warning:g} in the window starting {start:%Y-%m-%d %H:%M} UTC for {names}"
        )
    else:
        st.success(f"No PSI above {settings.psi_warning:g} in the newest window ({start:%Y-%m-%d %H:%M} UTC).")
    st.caption("Features vs the training split; the score vs the first predictions of the same model version.")
    st.dataframe(latest, hide_index=True, key="drift_table")
    st.subheader("PSI per window")
    long = drift_over_time(drift).reset_index().melt("window_start", var_name="series", value_name="psi").dropna()
    lines = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_start:T", title="window start (UTC)"),
            y=alt.Y("psi:Q", title="PSI"),
            color=alt.Color("series:N", title=None),
            tooltip=["window_start:T", "series", alt.Tooltip("psi:Q", format=".3f")],
        )
    )
    threshold = pd.DataFrame({"psi": [settings.psi_warning]})
    rule = alt.Chart(threshold).mark_rule(strokeDash=[4, 4], color="red").encode(y="psi:Q")
    st.altair_chart((lines + rule).properties(height=220), width="stretch")


def render(snap: Snapshot, settings: DashboardSettings) -> None:
    """All panels, or the empty state when there are no predictions."""
    if not snap.has_predictions:
        st.info(EMPTY_MESSAGE)
        return
    st.caption(
        f"predictions v{snap.predictions_version} · batch_metrics "
        f"{'v' + str(snap.metrics_version) if snap.metrics_version is not None else '—'} · drift "
        f"{'v' + str(snap.drift_version) if snap.drift_version is not None else '—'} · refresh every "
        f"{settings.refresh_seconds:g} s"
    )
    render_totals(snap, settings)
    render_quality(snap, settings)
    render_latency(snap, settings)
    render_alerts(snap, settings)
    render_scores(snap, settings)
    render_drift(snap, settings)


def main() -> None:
    """Page setup, config, then the self-refreshing fragment with every panel."""
    st.set_page_config(page_title=TITLE, page_icon="💳", layout="wide")
    st.title(TITLE)
    args = parse_args(sys.argv[1:])
    try:
        cfg = load_config(args.conf, args.overrides)
        settings = DashboardSettings.from_config(cfg)
    except FraudMLError as exc:
        st.error(f"Configuration error: {exc}")
        return
    monitor = get_monitor(settings.predictions_path, settings.metrics_path, settings.drift_path, settings.score_bins)
    refresh = settings.refresh_seconds if settings.refresh_seconds > 0 else None

    @st.fragment(run_every=refresh)
    def live() -> None:
        try:
            snap = monitor.refresh()
        except Exception as exc:  # noqa: BLE001 - show, keep refreshing; the next tick may succeed
            log.exception("reading the Delta tables failed")
            st.error(f"Could not read the Delta tables under {Path(settings.predictions_path).parent}: {exc}")
            return
        render(snap, settings)
        render_realtime_alerts(cfg, settings)

    live()


main()
