"""Synthetic fraud data: gradient penalty, WGAN-GP training, SMOTE, the stream composer, quality metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fraud_ml.errors import FraudMLError
from fraud_ml.schema import FEATURES, ID_COL, LABEL, SOURCE_COL
from fraud_ml.synthetic import (
    SmoteOversampler,
    c2st,
    c2st_auc,
    compose_stream,
    feature_distances,
    nearest_neighbour_ratio,
    plan_stream,
    quality_report,
    smote_table,
    stream_summary,
    synthetic_rows,
    tstr,
)
from fraud_ml.synthetic.networks import Critic, FeatureScaler, gradient_penalty
from fraud_ml.synthetic.wgan import WGANGP

V = [f"V{i}" for i in range(1, 29)]


def features(n: int, seed: int = 0, shift: dict[str, float] | None = None, scale: float = 1.0) -> pd.DataFrame:
    """Gaussian V1..V28 with PCA-like decreasing spread, uniform Time, log-normal Amount."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 1.0, (n, 28)) * np.linspace(2.0, 0.5, 28) * scale
    frame = pd.DataFrame(v, columns=V)
    for col, delta in (shift or {}).items():
        frame[col] += delta
    frame.insert(0, "Time", rng.uniform(0.0, 172_800.0, n))
    frame["Amount"] = np.round(np.exp(rng.normal(3.0, 1.0, n)), 2)
    return frame[FEATURES]


FRAUD_SHIFT = {"V14": -4.0, "V12": -3.0, "V10": -3.0, "V4": 3.0}


def split_frame(n_normal: int, n_fraud: int, seed: int = 0, source: str = "real", prefix: str = "tx") -> pd.DataFrame:
    """Split-layout rows: normals around 0, frauds shifted on a few components."""
    normal = features(n_normal, seed)
    fraud = features(n_fraud, seed + 1000, FRAUD_SHIFT)
    frame = pd.concat([normal, fraud], ignore_index=True)
    frame[LABEL] = np.r_[np.zeros(n_normal, dtype=np.int32), np.ones(n_fraud, dtype=np.int32)]
    frame.insert(0, ID_COL, [f"{prefix}-{seed}-{i}" for i in range(len(frame))])
    frame[SOURCE_COL] = source
    return frame


# --------------------------------------------------------------------------- gradient penalty
def test_gradient_penalty_linear_critic_is_per_sample():
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
        critic.bias.zero_()
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    gp = gradient_penalty(critic, real, fake)
    # grad_x D = w for every sample: ||w|| = 5 -> (5 - 1)^2 = 16.
    assert gp.item() == pytest.approx(16.0, rel=1e-6)
    # One norm over the whole batch would give (sqrt(4) * 5 - 1)^2 = 81.
    assert abs(gp.item() - 81.0) > 1.0
    gp.backward()  # create_graph=True: d gp / d w = 2 (||w|| - 1) w / ||w|| = [4.8, 6.4]
    assert critic.weight.grad.numpy().ravel() == pytest.approx([4.8, 6.4], rel=1e-5)


class _Quadratic(nn.Module):
    def forward(self, x, labels=None):  # D(x) = 0.5 ||x||^2 -> grad = x
        return 0.5 * (x**2).sum(dim=1)


def test_gradient_penalty_hand_computed_on_interpolates():
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fake = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    alpha = torch.tensor([0.5, 0.25])
    # x_hat = [2, 0] (norm 2) and [0, 0.5] (norm 0.5): ((2-1)^2 + (0.5-1)^2) / 2 = 0.625
    assert gradient_penalty(_Quadratic(), real, fake, alpha=alpha).item() == pytest.approx(0.625)
    # Labels are passed to the critic but the gradient is taken w.r.t. the features only.
    labels = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert gradient_penalty(_Quadratic(), real, fake, labels=labels, alpha=alpha).item() == pytest.approx(0.625)


def test_gradient_penalty_of_conditional_critic_ignores_label_inputs():
    critic = Critic(n_features=2, hidden=[], n_classes=2)  # a single linear layer over [x, onehot]
    with torch.no_grad():
        critic.net[0].weight.copy_(torch.tensor([[0.6, 0.8, 7.0, -7.0]]))
        critic.net[0].bias.zero_()
    real, fake = torch.randn(3, 2), torch.randn(3, 2)
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert gradient_penalty(critic, real, fake, labels=onehot).item() == pytest.approx(0.0, abs=1e-10)


# --------------------------------------------------------------------------- scaler and WGAN-GP
def test_feature_scaler_round_trip_and_clipping():
    X = features(200, seed=3)
    scaler = FeatureScaler(log_amount=True).fit(X.to_numpy(), FEATURES)
    Z = scaler.transform(X.to_numpy())
    assert Z.dtype == np.float32 and np.abs(Z.mean(axis=0)).max() < 1e-4
    assert scaler.inverse_transform(Z) == pytest.approx(X.to_numpy(), rel=1e-4, abs=1e-2)
    wild = np.full((2, len(FEATURES)), 50.0, dtype=np.float32)
    wild[1] = -50.0
    back = scaler.inverse_transform(wild)
    t, a = FEATURES.index("Time"), FEATURES.index("Amount")
    assert np.isfinite(back).all() and (back[:, a] >= 0).all()
    assert back[:, t].min() >= X["Time"].min() and back[:, t].max() <= X["Time"].max()


def _small_gan(**kw) -> WGANGP:
    params = dict(
        epochs=120,
        batch_size=64,
        lr=2e-3,
        latent_dim=8,
        generator_hidden=[64, 64],
        critic_hidden=[64, 64],
        device="cpu",
        progress=False,
        mlflow_logging=False,
        num_threads=1,
        seed=0,
    )
    params.update(kw)
    return WGANGP(**params)


@pytest.fixture(scope="module")
def trained_gan() -> tuple[WGANGP, pd.DataFrame]:
    data = features(128, seed=11, shift=FRAUD_SHIFT)
    return _small_gan().fit(data), data


def test_short_cpu_training_lowers_the_wasserstein_estimate(trained_gan):
    gan, data = trained_gan
    w = np.array(gan.history_["wasserstein"])
    assert len(w) == 120 and np.isfinite(w).all()
    assert gan.history_["critic_loss"] and gan.history_["generator_loss"]
    peak = w.max()
    assert peak > 2.0  # the critic first learns to separate the untrained generator's rows
    assert w[-5:].mean() < 0.75 * peak, w[::10]
    assert w[-5:].mean() < w[5:15].mean()
    # Evaluated afresh on the training rows, the final critic agrees.
    gan_w = gan.wasserstein_estimate(data)
    assert 0.0 < gan_w < 0.75 * peak
    assert gan.device_.type == "cpu" and gan.epochs_per_second_ > 0


def test_samples_have_right_shape_dtype_and_ranges(trained_gan):
    gan, data = trained_gan
    out = gan.sample(500, random_state=1)
    assert list(out.columns) == FEATURES and out.shape == (500, len(FEATURES))
    assert all(out.dtypes == np.float64)
    assert np.isfinite(out.to_numpy()).all()
    assert (out["Amount"] >= 0).all()
    assert out["Time"].between(data["Time"].min(), data["Time"].max()).all()
    assert not out.duplicated().any()
    # The generator moved towards the data: the shifted component's mean is on the right side.
    assert out["V14"].mean() < -2.0
    # Reproducible by random_state; successive calls without it differ.
    pd.testing.assert_frame_equal(out, gan.sample(500, random_state=1))
    assert not gan.sample(5).equals(gan.sample(5))
    assert gan.sample(0).shape == (0, len(FEATURES))


def test_training_is_reproducible_by_seed_and_checkpoint_round_trip(tmp_path):
    data = features(64, seed=5)
    a = _small_gan(epochs=3).fit(data)
    b = _small_gan(epochs=3).fit(data)
    assert a.history_["wasserstein"] == b.history_["wasserstein"]
    pd.testing.assert_frame_equal(a.sample(20, random_state=4), b.sample(20, random_state=4))
    path = a.save(tmp_path / "ckpt.pt")
    gen_only = a.save(tmp_path / "generator.pt", include_critic=False)
    for p in (path, gen_only):
        loaded = WGANGP.load(p, device="cpu")
        pd.testing.assert_frame_equal(loaded.sample(20, random_state=4), a.sample(20, random_state=4))


def test_conditional_variant_samples_by_label():
    frame = split_frame(96, 96, seed=2)
    gan = _small_gan(conditional=True, epochs=60).fit(frame[FEATURES], frame[LABEL])
    frauds, normals = gan.sample(300, label=1, random_state=0), gan.sample(300, label=0, random_state=0)
    assert frauds.shape == normals.shape == (300, len(FEATURES))
    # The label steers the generator: frauds carry the V14 shift (-4), normals do not.
    assert frauds["V14"].mean() < normals["V14"].mean() - 1.5
    with pytest.raises(ValueError, match="label 3"):
        gan.sample(5, label=3)
    with pytest.raises(ValueError, match="needs labels"):
        _small_gan(conditional=True).fit(frame[FEATURES])


def test_wgan_input_validation():
    with pytest.raises(FraudMLError, match="at least 2"):
        _small_gan().fit(features(1))
    bad = features(10)
    bad.loc[0, "V1"] = np.nan
    with pytest.raises(FraudMLError, match="NaN"):
        _small_gan().fit(bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        _small_gan().sample(3)


def test_wgan_logs_losses_and_checkpoint_to_mlflow(tmp_path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        exp = mlflow.create_experiment("wgan-test", artifact_location=(tmp_path / "art").as_uri())
        with mlflow.start_run(experiment_id=exp) as run:
            _small_gan(epochs=4, mlflow_logging=None).fit(features(64, seed=1))  # auto: active run
        client = mlflow.tracking.MlflowClient()
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "wgan_wasserstein")]
        assert sorted(steps) == [1, 2, 3, 4]
        assert client.get_run(run.info.run_id).data.params["wgan.n_critic"] == "5"
        names = {f.path for f in client.list_artifacts(run.info.run_id, "wgan")}
        assert names == {"wgan/wgan_checkpoint.pt", "wgan/generator.pt"}
    finally:
        mlflow.set_tracking_uri(None)


# --------------------------------------------------------------------------- SMOTE
def test_smote_hits_the_requested_ratio_reproducibly():
    frame = split_frame(1000, 12, seed=1)
    X, y = frame[FEATURES].to_numpy(), frame[LABEL].to_numpy()
    X_res, y_res = SmoteOversampler(ratio=0.10, k_neighbors=5, seed=7).fit_resample(X, y)
    assert (y_res == 0).sum() == 1000 and (y_res == 1).sum() == 111  # round(0.1 * 1000 / 0.9)
    assert y_res.mean() == pytest.approx(0.10, abs=1 / len(y_res))
    assert np.array_equal(X_res[: len(X)], X)  # originals first, unchanged
    X_again, _ = SmoteOversampler(ratio=0.10, k_neighbors=5, seed=7).fit_resample(X, y)
    assert np.array_equal(X_res, X_again)
    X_other, _ = SmoteOversampler(ratio=0.10, k_neighbors=5, seed=8).fit_resample(X, y)
    assert not np.array_equal(X_res, X_other)
    _, y_30 = SmoteOversampler(ratio=0.30, seed=7).fit_resample(X, y)
    assert y_30.mean() == pytest.approx(0.30, abs=1 / len(y_30))


def test_smote_table_layout_and_errors():
    frame = split_frame(500, 10, seed=4)
    table = smote_table(frame, ratio=0.2, k_neighbors=3, seed=1)
    new = table[table[SOURCE_COL] == "smote"]
    assert len(new) == 125 - 10 and (new[LABEL] == 1).all()
    assert table[LABEL].mean() == pytest.approx(0.2, abs=1 / len(table))
    assert table[ID_COL].is_unique and new[ID_COL].iloc[0] == "smote-000001"
    assert (table[SOURCE_COL] == "real").sum() == len(frame)
    frauds = frame[frame[LABEL] == 1]
    # SMOTE interpolates: every synthetic value lies within the real frauds' range.
    assert (new[FEATURES].min() >= frauds[FEATURES].min() - 1e-9).all()
    assert (new[FEATURES].max() <= frauds[FEATURES].max() + 1e-9).all()
    with pytest.raises(FraudMLError, match="already has"):
        smote_table(split_frame(50, 20), ratio=0.1)
    with pytest.raises(FraudMLError, match="k_neighbors"):
        smote_table(split_frame(500, 4), ratio=0.1, k_neighbors=5)


# --------------------------------------------------------------------------- composer
@pytest.fixture(scope="module")
def validation_rows() -> pd.DataFrame:
    return split_frame(20_000, 40, seed=9)


def _wgan_set(n: int) -> pd.DataFrame:
    return synthetic_rows(features(n, seed=99, shift=FRAUD_SHIFT), "wgan")


def test_composer_fraud_rate_and_60_40_mix(validation_rows):
    syn = _wgan_set(200)
    stream = compose_stream(validation_rows, syn, fraud_rate=0.0015, synthetic_share=0.6, seed=3)
    summary = stream_summary(stream)
    assert summary["frauds"] == round(0.0015 * 20_000 / (1 - 0.0015)) == 30
    assert summary["rows"] == 20_030
    assert summary["fraud_rate"] == pytest.approx(0.0015, abs=1 / summary["rows"])
    assert summary["synthetic_frauds"] == 18 and summary["real_frauds"] == 12
    frauds = stream[stream[LABEL] == 1]
    assert set(frauds[SOURCE_COL]) == {"wgan", "real"}
    assert (frauds[SOURCE_COL] == "wgan").sum() == 18
    assert set(stream.loc[stream[SOURCE_COL] == "wgan", ID_COL]) <= set(syn[ID_COL])
    assert (stream.loc[stream[LABEL] == 0, SOURCE_COL] == "real").all()
    assert stream[ID_COL].is_unique and stream[SOURCE_COL].notna().all()
    assert stream["Time"].is_monotonic_increasing
    pd.testing.assert_frame_equal(stream, compose_stream(validation_rows, syn, 0.0015, 0.6, seed=3))
    # A fixed stream size and a 0.2% rate.
    sized = stream_summary(compose_stream(validation_rows, syn, fraud_rate=0.002, synthetic_share=0.6, n_rows=10_000))
    assert sized == {
        "rows": 10_000,
        "frauds": 20,
        "fraud_rate": 0.002,
        "synthetic_frauds": 12,
        "real_frauds": 8,
        "synthetic_share": 0.6,
    }


def test_composer_validates_its_inputs(validation_rows):
    with pytest.raises(FraudMLError, match="real frauds"):
        compose_stream(validation_rows, _wgan_set(200), fraud_rate=0.01, synthetic_share=0.6)
    with pytest.raises(FraudMLError, match="synthetic frauds"):
        compose_stream(validation_rows, _wgan_set(5), fraud_rate=0.0015, synthetic_share=0.6)
    with pytest.raises(FraudMLError, match="gives no fraud row"):
        compose_stream(split_frame(300, 5), _wgan_set(10), fraud_rate=0.0015)
    with pytest.raises(FraudMLError, match="source"):
        compose_stream(validation_rows, split_frame(0, 50, source="real"), fraud_rate=0.0015)
    with pytest.raises(ValueError, match="fraud_rate"):
        plan_stream(1000, 0.0, 0.6)
    with pytest.raises(ValueError, match="synthetic_share"):
        plan_stream(1000, 0.01, 1.5)


# --------------------------------------------------------------------------- quality
def test_c2st_real_vs_real_is_chance_and_real_vs_shifted_is_separable():
    real_a, real_b = features(300, seed=21), features(300, seed=22)
    assert c2st_auc(real_a, real_b, seed=0) == pytest.approx(0.5, abs=0.08)
    shifted = features(300, seed=23, shift={"V14": 5.0})  # ~4 std of V14
    assert c2st_auc(real_a, shifted, seed=0) > 0.97
    # The linear variant sees a mean shift as well, and chance on same-distribution rows.
    assert c2st(real_a, shifted, classifier="logistic")["auc"] > 0.97
    assert c2st(real_a, real_b, classifier="logistic")["auc"] == pytest.approx(0.5, abs=0.08)
    assert c2st_auc(real_a, features(300, seed=24, scale=0.3), seed=0) > 0.95  # too narrow is detected too


def test_feature_distances_and_copy_check():
    real = features(600, seed=31)
    same = feature_distances(real, features(600, seed=32))
    assert same["wasserstein"].max() < 0.2 and same["ks_stat"].max() < 0.12
    moved = feature_distances(real, features(600, seed=33, shift={"V1": 4.0}))  # V1 std is 2 -> 2 std
    assert moved["wasserstein"].idxmax() == "V1" and moved.loc["V1", "wasserstein"] == pytest.approx(2.0, abs=0.2)
    assert moved.loc["V1", "ks_stat"] > 0.6
    copies = nearest_neighbour_ratio(real, real.iloc[:100])
    assert copies["exact_copy_share"] == 1.0 and copies["dcr_ratio"] == 0.0
    fresh = nearest_neighbour_ratio(real, features(300, seed=34))
    assert fresh["exact_copy_share"] == 0.0 and 0.8 < fresh["dcr_ratio"] < 1.3


def test_tstr_real_like_vs_useless_synthetic_frauds():
    train, test = split_frame(600, 60, seed=41), split_frame(600, 60, seed=42)
    good = features(60, seed=43, shift=FRAUD_SHIFT)
    useless = features(60, seed=44)  # "frauds" that look like normals
    r_good = tstr(good, train, test, seed=0, model_params={"n_estimators": 50})
    r_bad = tstr(useless, train, test, seed=0, model_params={"n_estimators": 50})
    assert r_good["trtr_ap"] > 0.95 and r_good["tstr_ap"] > 0.9 and r_good["tstr_ratio"] > 0.9
    assert r_bad["tstr_ap"] < 0.5 and r_bad["trtr_ap"] == pytest.approx(r_good["trtr_ap"])
    assert r_good["test_frauds"] == 60 and r_good["train_synthetic_frauds"] == 60
    leaky = pd.concat([test, synthetic_rows(good, "smote")], ignore_index=True)
    with pytest.raises(ValueError, match="real rows only"):
        tstr(good, train, leaky)


def test_quality_report_writes_json_csv_and_png(tmp_path):
    train, test = split_frame(400, 40, seed=51), split_frame(400, 40, seed=52)
    real = train[train[LABEL] == 1]
    report = quality_report(
        real,
        features(80, seed=53, shift=FRAUD_SHIFT),
        train,
        test,
        "wgan",
        seed=0,
        cv=3,
        model_params={"n_estimators": 30},
        out_dir=tmp_path,
    )
    s = report.summary
    assert 0.3 < s["c2st_auc"] < 0.75 and s["mean_wasserstein"] < 0.35
    assert s["n_real"] == 40 and s["n_synthetic"] == 80 and s["verdict"]
    assert set(report.paths) == {"json", "distances", "plot"}
    loaded = json.loads(report.paths["json"].read_text())
    assert loaded["summary"]["c2st_auc"] == pytest.approx(s["c2st_auc"])
    assert len(loaded["distances"]) == len(FEATURES)
    assert report.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(report.metrics()) >= {"c2st_auc", "tstr_ap", "trtr_ap", "mean_wasserstein", "mean_ks"}
