"""WGAN-GP (Gulrajani et al. 2017) in PyTorch for tabular fraud rows, optionally label-conditioned.

One code path for CUDA and CPU. The gradient penalty is computed per sample on
random interpolates: ``lambda * mean_i (||grad_x D(x_i)||_2 - 1)^2``. Features
are standardised with statistics of the training rows (Amount through
``log1p`` first) and the transform is inverted on output, so samples come back
in the original units with Amount >= 0 and Time inside the training range.

Usage (scikit-learn style)::

    gan = WGANGP(epochs=300, seed=42).fit(validation_frauds[FEATURES])
    rows = gan.sample(1000)              # pandas DataFrame, FEATURES, float64

    cgan = WGANGP(conditional=True).fit(validation[FEATURES], validation["Class"])
    frauds = cgan.sample(1000, label=1)
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from fraud_ml.errors import FraudMLError
from fraud_ml.features import feature_matrix
from fraud_ml.schema import FEATURES
from fraud_ml.synthetic.networks import (
    BatchSampler,
    Critic,
    FeatureScaler,
    Generator,
    gradient_penalty,
    resolve_device,
)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "fraud_ml.wgan/1"


class WGANGP:
    """Wasserstein GAN with gradient penalty; ``conditional=True`` for the label-conditioned variant.

    One epoch = ``ceil(n_rows / batch_size)`` generator updates, each after
    ``n_critic`` critic updates on batches drawn (with replacement) from the
    training rows; the conditional model draws classes uniformly when
    ``balance_classes`` so rare frauds are seen as often as normals.
    ``history_`` holds per-epoch means of ``critic_loss``, ``generator_loss``,
    ``wasserstein`` (critic estimate E[D(real)] - E[D(fake)]) and ``gradient_penalty``.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        generator_hidden: Sequence[int] = (128, 128),
        critic_hidden: Sequence[int] = (128, 128),
        epochs: int = 300,
        batch_size: int = 64,
        lr: float = 1e-4,
        betas: Sequence[float] = (0.0, 0.9),
        n_critic: int = 5,
        gp_lambda: float = 10.0,
        conditional: bool = False,
        balance_classes: bool = True,
        log_amount: bool = True,
        device: str = "auto",
        seed: int = 42,
        progress: bool = True,
        mlflow_logging: bool | None = None,
        checkpoint_dir: str | None = None,
        num_threads: int = 0,
    ) -> None:
        self.latent_dim = int(latent_dim)
        self.generator_hidden = [int(h) for h in generator_hidden]
        self.critic_hidden = [int(h) for h in critic_hidden]
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.betas = tuple(float(b) for b in betas)
        self.n_critic = int(n_critic)
        self.gp_lambda = float(gp_lambda)
        self.conditional = bool(conditional)
        self.balance_classes = bool(balance_classes)
        self.log_amount = bool(log_amount)
        self.device = device
        self.seed = int(seed)
        self.progress = progress
        self.mlflow_logging = mlflow_logging
        self.checkpoint_dir = checkpoint_dir
        self.num_threads = int(num_threads or 0)
        if len(self.betas) != 2:
            raise ValueError(f"betas must have two values, got {betas}")
        if self.epochs < 1 or self.batch_size < 1 or self.n_critic < 1:
            raise ValueError("epochs, batch_size and n_critic must be >= 1")

    _PARAMS = (
        "latent_dim",
        "generator_hidden",
        "critic_hidden",
        "epochs",
        "batch_size",
        "lr",
        "betas",
        "n_critic",
        "gp_lambda",
        "conditional",
        "balance_classes",
        "log_amount",
        "device",
        "seed",
    )

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (scikit-learn style)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in ((k, getattr(self, k)) for k in self._PARAMS)}

    # ------------------------------------------------------------------ training
    def fit(self, X: pd.DataFrame | np.ndarray, y: Sequence[int] | np.ndarray | None = None) -> "WGANGP":
        """Train on the rows of ``X`` (FEATURES); ``y`` (labels) is required when conditional.

        On the CPU, ``num_threads`` > 0 caps torch's intra-op threads during the fit
        (small MLPs run fastest on one thread, especially on a shared machine).
        """
        previous_threads = torch.get_num_threads()
        if self.num_threads > 0 and resolve_device(self.device).type == "cpu":
            torch.set_num_threads(self.num_threads)
        try:
            return self._fit(X, y)
        finally:
            torch.set_num_threads(previous_threads)

    def _fit(self, X: pd.DataFrame | np.ndarray, y: Sequence[int] | np.ndarray | None) -> "WGANGP":
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(FEATURES)
        if isinstance(X, pd.DataFrame) and set(FEATURES) <= set(X.columns):
            columns = list(FEATURES)
        raw = feature_matrix(X, columns, dtype=np.float64)
        if raw.shape[1] != len(columns):
            raise ValueError(f"expected {len(columns)} feature columns, got {raw.shape[1]}")
        if len(raw) < 2:
            raise FraudMLError(f"WGAN-GP needs at least 2 training rows, got {len(raw)}")
        if not np.isfinite(raw).all():
            raise FraudMLError("WGAN-GP training rows contain NaN or infinite values")
        if self.conditional:
            if y is None:
                raise ValueError("the conditional WGAN-GP needs labels: fit(X, y)")
            y_arr = np.asarray(y).astype(int).ravel()
            if len(y_arr) != len(raw):
                raise ValueError("X and y have different lengths")
            self.classes_ = np.unique(y_arr)
            if len(self.classes_) < 2:
                raise FraudMLError("the conditional WGAN-GP needs rows of both classes")
            codes = np.searchsorted(self.classes_, y_arr)
        else:
            self.classes_ = np.array([], dtype=int)
            codes = np.zeros(len(raw), dtype=int)

        self.device_ = resolve_device(self.device)
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        self.feature_names_in_ = columns
        self.n_features_in_ = len(columns)
        self.scaler_ = FeatureScaler(self.log_amount).fit(raw, columns)
        n_classes = len(self.classes_)
        self.generator_ = Generator(self.latent_dim, self.n_features_in_, self.generator_hidden, n_classes).to(
            self.device_
        )
        self.critic_ = Critic(self.n_features_in_, self.critic_hidden, n_classes).to(self.device_)
        self._opt_g = torch.optim.Adam(self.generator_.parameters(), lr=self.lr, betas=self.betas)
        self._opt_d = torch.optim.Adam(self.critic_.parameters(), lr=self.lr, betas=self.betas)
        rng = torch.Generator(device=self.device_)
        rng.manual_seed(self.seed)

        data = torch.as_tensor(self.scaler_.transform(raw), device=self.device_)
        onehot = (
            torch.nn.functional.one_hot(torch.as_tensor(codes), n_classes).float().to(self.device_)
            if n_classes
            else None
        )
        sampler = BatchSampler(
            codes, n_classes, self.batch_size, self.balance_classes and self.conditional, self.device_, rng
        )
        iterations = max(1, math.ceil(len(raw) / self.batch_size))
        use_mlflow = self._mlflow_enabled()
        if use_mlflow:
            import mlflow

            mlflow.log_params(
                {f"wgan.{k}": v for k, v in self.get_params().items()}
                | {"wgan.device_used": str(self.device_), "wgan.train_rows": len(raw)}
            )
        self.history_: dict[str, list[float]] = {
            k: [] for k in ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty")
        }
        log.info(
            "WGAN-GP%s: %d rows x %d features on %s, %d epochs x %d iterations (n_critic=%d, lambda=%g)",
            " (conditional)" if self.conditional else "",
            len(raw),
            self.n_features_in_,
            self.device_,
            self.epochs,
            iterations,
            self.n_critic,
            self.gp_lambda,
        )
        from tqdm.auto import tqdm

        started = time.perf_counter()
        bar = tqdm(range(1, self.epochs + 1), desc="WGAN-GP", unit="epoch", disable=not self.progress, mininterval=1.0)
        self.generator_.train()
        self.critic_.train()
        for epoch in bar:
            sums = torch.zeros(4, device=self.device_)
            for _ in range(iterations):
                for _ in range(self.n_critic):
                    idx = sampler.draw()
                    real = data[idx]
                    labels = onehot[idx] if onehot is not None else None
                    z = torch.randn(len(idx), self.latent_dim, device=self.device_, generator=rng)
                    with torch.no_grad():
                        fake = self.generator_(z, labels)
                    d_real = self.critic_(real, labels).mean()
                    d_fake = self.critic_(fake, labels).mean()
                    gp = gradient_penalty(self.critic_, real, fake, labels, generator=rng)
                    loss_d = d_fake - d_real + self.gp_lambda * gp
                    self._opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    self._opt_d.step()
                    sums[0] += loss_d.detach()
                    sums[2] += (d_real - d_fake).detach()
                    sums[3] += gp.detach()
                idx = sampler.draw()
                labels = onehot[idx] if onehot is not None else None
                z = torch.randn(len(idx), self.latent_dim, device=self.device_, generator=rng)
                loss_g = -self.critic_(self.generator_(z, labels), labels).mean()
                self._opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self._opt_g.step()
                sums[1] += loss_g.detach()
            steps = iterations * self.n_critic
            c_loss, g_loss, w, gp_v = (
                sums / torch.tensor([steps, iterations, steps, steps], device=self.device_)
            ).tolist()
            if not all(math.isfinite(v) for v in (c_loss, g_loss, w, gp_v)):
                raise FraudMLError(f"WGAN-GP diverged at epoch {epoch} (non-finite loss); lower synthetic.wgan.lr")
            for key, value in zip(self.history_, (c_loss, g_loss, w, gp_v)):
                self.history_[key].append(value)
            bar.set_postfix(W=f"{w:.3f}", critic=f"{c_loss:.3f}", gen=f"{g_loss:.3f}", refresh=False)
            if use_mlflow:
                import mlflow

                mlflow.log_metrics(
                    {
                        "wgan_critic_loss": c_loss,
                        "wgan_generator_loss": g_loss,
                        "wgan_wasserstein": w,
                        "wgan_gradient_penalty": gp_v,
                    },
                    step=epoch,
                    synchronous=False,
                )
        bar.close()
        self.fit_seconds_ = time.perf_counter() - started
        self.epochs_per_second_ = self.epochs / max(self.fit_seconds_, 1e-9)
        self.generator_.eval()
        self.critic_.eval()
        self._sample_rng = torch.Generator(device=self.device_)
        self._sample_rng.manual_seed(self.seed + 1)
        log.info(
            "WGAN-GP trained in %.1f s (%.1f epochs/s on %s); final W estimate %.4f",
            self.fit_seconds_,
            self.epochs_per_second_,
            self.device_,
            self.history_["wasserstein"][-1],
        )
        if self.checkpoint_dir:
            self.save(Path(self.checkpoint_dir) / "wgan_checkpoint.pt")
        if use_mlflow:
            self._log_to_mlflow()
        return self

    def _mlflow_enabled(self) -> bool:
        if self.mlflow_logging is not None:
            return bool(self.mlflow_logging)
        try:
            import mlflow

            return mlflow.active_run() is not None
        except ImportError:  # pragma: no cover - mlflow is a dependency
            return False

    def _log_to_mlflow(self) -> None:
        import mlflow

        mlflow.flush_async_logging()
        mlflow.log_metrics({"wgan_fit_seconds": self.fit_seconds_, "wgan_epochs_per_second": self.epochs_per_second_})
        with tempfile.TemporaryDirectory() as tmp:
            self.save(Path(tmp) / "wgan_checkpoint.pt")
            self.save(Path(tmp) / "generator.pt", include_critic=False)
            mlflow.log_artifacts(tmp, artifact_path="wgan")

    # ------------------------------------------------------------------ sampling
    def _check_fitted(self) -> None:
        if not hasattr(self, "generator_"):
            raise RuntimeError("this WGANGP is not fitted yet: call fit() first")

    def _labels(self, n: int, label: int | None) -> torch.Tensor | None:
        if not self.conditional:
            if label not in (None, 1):
                raise ValueError("an unconditional WGANGP has no labels; fit it on one class instead")
            return None
        label = 1 if label is None else int(label)
        if label not in self.classes_:
            raise ValueError(f"label {label} not among the trained classes {self.classes_.tolist()}")
        code = int(np.searchsorted(self.classes_, label))
        out = torch.zeros(n, len(self.classes_), device=self.device_)
        out[:, code] = 1.0
        return out

    @torch.no_grad()
    def _generate_scaled(self, n: int, label: int | None, rng: torch.Generator) -> torch.Tensor:
        chunks = []
        for start in range(0, n, 65_536):
            size = min(65_536, n - start)
            z = torch.randn(size, self.latent_dim, device=self.device_, generator=rng)
            chunks.append(self.generator_(z, self._labels(size, label)))
        return torch.cat(chunks) if chunks else torch.zeros(0, self.n_features_in_, device=self.device_)

    def sample(self, n: int, label: int | None = None, random_state: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows (float64, original units) as a DataFrame with the training columns.

        For the conditional model ``label`` picks the class (default 1 = fraud).
        ``random_state`` makes one call reproducible; without it successive calls
        continue one seeded stream.
        """
        self._check_fitted()
        if n < 0:
            raise ValueError("n must be >= 0")
        if random_state is None:
            rng = self._sample_rng
        else:
            rng = torch.Generator(device=self.device_)
            rng.manual_seed(int(random_state))
        scaled = self._generate_scaled(int(n), label, rng).cpu().numpy()
        values = self.scaler_.inverse_transform(scaled)
        if not np.isfinite(values).all():
            raise FraudMLError("the generator produced non-finite values; retrain with a lower learning rate")
        return pd.DataFrame(values, columns=self.feature_names_in_).astype(np.float64)

    @torch.no_grad()
    def wasserstein_estimate(
        self, X_real: pd.DataFrame | np.ndarray, y: Sequence[int] | None = None, random_state: int = 0
    ) -> float:
        """The critic's estimate E[D(real)] - E[D(fake)] on ``X_real`` vs as many generated rows.

        Conditional model: ``y`` gives the labels of ``X_real`` (default: all 1) and
        the generated rows get the same labels.
        """
        self._check_fitted()
        real = torch.as_tensor(
            self.scaler_.transform(feature_matrix(X_real, self.feature_names_in_, dtype=np.float64)),
            device=self.device_,
        )
        rng = torch.Generator(device=self.device_)
        rng.manual_seed(int(random_state))
        onehot = None
        if self.conditional:
            labels = np.ones(len(real), dtype=int) if y is None else np.asarray(y).astype(int)
            codes = torch.as_tensor(np.searchsorted(self.classes_, labels))
            onehot = torch.nn.functional.one_hot(codes, len(self.classes_)).float().to(self.device_)
        z = torch.randn(len(real), self.latent_dim, device=self.device_, generator=rng)
        fake = self.generator_(z, onehot)
        return float(self.critic_(real, onehot).mean() - self.critic_(fake, onehot).mean())

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, include_critic: bool = True) -> Path:
        """Checkpoint: state dicts, scaler and parameters (``include_critic=False``: generator only)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "params": self.get_params(),
            "feature_names": list(self.feature_names_in_),
            "classes": [int(c) for c in self.classes_],
            "scaler": self.scaler_.state(),
            "generator": {k: v.detach().cpu() for k, v in self.generator_.state_dict().items()},
            "history": self.history_,
        }
        if include_critic:
            state["critic"] = {k: v.detach().cpu() for k, v in self.critic_.state_dict().items()}
            state["optimizer_g"] = self._opt_g.state_dict()
            state["optimizer_d"] = self._opt_d.state_dict()
        torch.save(state, path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "WGANGP":
        """A fitted model from ``save()`` output, ready to ``sample``."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise FraudMLError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
        params = dict(state["params"], device=device, progress=False)
        model = cls(**params)
        model.device_ = resolve_device(device)
        model.feature_names_in_ = list(state["feature_names"])
        model.n_features_in_ = len(model.feature_names_in_)
        model.classes_ = np.asarray(state["classes"], dtype=int)
        model.scaler_ = FeatureScaler.from_state(state["scaler"])
        n_classes = len(model.classes_)
        model.generator_ = Generator(model.latent_dim, model.n_features_in_, model.generator_hidden, n_classes)
        model.generator_.load_state_dict(state["generator"])
        model.generator_.to(model.device_).eval()
        model.critic_ = Critic(model.n_features_in_, model.critic_hidden, n_classes)
        if "critic" in state:
            model.critic_.load_state_dict(state["critic"])
        model.critic_.to(model.device_).eval()
        model._opt_g = torch.optim.Adam(model.generator_.parameters(), lr=model.lr, betas=model.betas)
        model._opt_d = torch.optim.Adam(model.critic_.parameters(), lr=model.lr, betas=model.betas)
        model.history_ = state.get("history", {})
        model._sample_rng = torch.Generator(device=model.device_)
        model._sample_rng.manual_seed(model.seed + 1)
        return model
