"""The networks and helpers the WGAN-GP trains: feature scaling, generator, critic, gradient
penalty and the batch sampler (PyTorch; CUDA when present, CPU otherwise).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from fraud_ml.errors import FraudMLError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cpu``/``cuda``/``cuda:N`` as asked."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FraudMLError(f"synthetic.wgan.device={name} but CUDA is not available here; use auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise FraudMLError(f"unknown torch device '{name}' (use auto, cpu or cuda)") from None


class FeatureScaler:
    """Standardisation fitted on the training rows; Amount via log1p; inverse clips Amount/Time."""

    def __init__(self, log_amount: bool = True) -> None:
        self.log_amount = bool(log_amount)

    def fit(self, X: np.ndarray, columns: Sequence[str]) -> "FeatureScaler":
        X = np.asarray(X, dtype=np.float64)
        self.columns = list(columns)
        self.amount_idx = self.columns.index("Amount") if "Amount" in self.columns else -1
        self.time_idx = self.columns.index("Time") if "Time" in self.columns else -1
        self.min_ = X.min(axis=0)
        self.max_ = X.max(axis=0)
        Z = self._forward(X)
        self.mean_ = Z.mean(axis=0)
        self.scale_ = np.where(Z.std(axis=0) > 1e-8, Z.std(axis=0), 1.0)
        return self

    def _forward(self, X: np.ndarray) -> np.ndarray:
        Z = np.array(X, dtype=np.float64, copy=True)
        if self.log_amount and self.amount_idx >= 0:
            Z[:, self.amount_idx] = np.log1p(np.clip(Z[:, self.amount_idx], 0.0, None))
        return Z

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Raw features -> standardised float32 matrix for the networks."""
        return ((self._forward(X) - self.mean_) / self.scale_).astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Network output -> raw units (float64); Amount >= 0, Time within the training range."""
        X = np.asarray(Z, dtype=np.float64) * self.scale_ + self.mean_
        if self.amount_idx >= 0:
            a = X[:, self.amount_idx]
            if self.log_amount:
                # Cap the log-amount a little above the training maximum: exp() of a
                # wild generator output must not overflow.
                a = np.expm1(np.clip(a, 0.0, math.log1p(max(self.max_[self.amount_idx], 0.0)) + 1.0))
            X[:, self.amount_idx] = np.clip(a, 0.0, None)
        if self.time_idx >= 0:
            X[:, self.time_idx] = np.clip(X[:, self.time_idx], self.min_[self.time_idx], self.max_[self.time_idx])
        return X

    def state(self) -> dict[str, Any]:
        """Plain-Python state (safe for ``torch.load(weights_only=True)``)."""
        return {
            "log_amount": self.log_amount,
            "columns": self.columns,
            **{k: getattr(self, k).tolist() for k in ("min_", "max_", "mean_", "scale_")},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "FeatureScaler":
        scaler = cls(state["log_amount"])
        scaler.columns = list(state["columns"])
        scaler.amount_idx = scaler.columns.index("Amount") if "Amount" in scaler.columns else -1
        scaler.time_idx = scaler.columns.index("Time") if "Time" in scaler.columns else -1
        for k in ("min_", "max_", "mean_", "scale_"):
            setattr(scaler, k, np.asarray(state[k], dtype=np.float64))
        return scaler


def _mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, int(width)), nn.LeakyReLU(0.2)]
        in_dim = int(width)
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """MLP: noise (+ one-hot label) -> standardised feature vector."""

    def __init__(self, latent_dim: int, n_features: int, hidden: Sequence[int], n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = _mlp(latent_dim + n_classes, hidden, n_features)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z if labels is None else torch.cat([z, labels], dim=1))


class Critic(nn.Module):
    """MLP: feature vector (+ one-hot label) -> unbounded score (no sigmoid, no batch norm)."""

    def __init__(self, n_features: int, hidden: Sequence[int], n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = _mlp(n_features + n_classes, hidden, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x if labels is None else torch.cat([x, labels], dim=1)).squeeze(-1)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    alpha: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``mean_i (||grad D(x_hat_i)||_2 - 1)^2`` with ``x_hat_i = a_i real_i + (1 - a_i) fake_i``.

    One gradient norm **per sample** (not one norm over the whole batch). ``alpha``
    (shape ``(B,)`` or ``(B, 1)``) defaults to U(0, 1) per sample. The result keeps
    the graph (``create_graph=True``) so it can be back-propagated into the critic.
    """
    batch = real.shape[0]
    if alpha is None:
        alpha = torch.rand(batch, 1, device=real.device, dtype=real.dtype, generator=generator)
    alpha = alpha.reshape(batch, *([1] * (real.dim() - 1))).to(real)
    interpolates = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(interpolates) if labels is None else critic(interpolates, labels)
    (grads,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    norms = grads.reshape(batch, -1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


class BatchSampler:
    """Row indices for one batch, drawn with replacement; optionally uniform over classes."""

    def __init__(
        self,
        codes: np.ndarray,
        n_classes: int,
        batch_size: int,
        balanced: bool,
        device: torch.device,
        rng: torch.Generator,
    ) -> None:
        self.n = len(codes)
        self.batch_size = batch_size
        self.balanced = balanced and n_classes > 1
        self.device = device
        self.rng = rng
        if self.balanced:
            order = np.argsort(codes, kind="stable")
            counts = np.bincount(codes, minlength=n_classes)
            self.order = torch.as_tensor(order, device=device)
            self.counts = torch.as_tensor(counts, device=device)
            self.starts = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), device=device)
            self.n_classes = n_classes

    def draw(self) -> torch.Tensor:
        if not self.balanced:
            return torch.randint(0, self.n, (self.batch_size,), device=self.device, generator=self.rng)
        cls = torch.randint(0, self.n_classes, (self.batch_size,), device=self.device, generator=self.rng)
        u = torch.rand(self.batch_size, device=self.device, generator=self.rng)
        offset = (u * self.counts[cls]).long().clamp_max(self.counts[cls] - 1)
        return self.order[self.starts[cls] + offset]
