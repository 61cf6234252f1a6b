"""Stream composer: validation normals plus a small, mixed share of real and synthetic frauds.

The seed's final recipe: a replay stream at a realistic fraud rate (0.1-0.2%)
where 60% of the frauds are synthetic and 40% are real validation frauds.
Every row keeps a ``source`` column (``real``/``generated`` for rows of the
split, ``smote``/``wgan``/``cwgan`` for synthetic ones), so no synthetic row
can be mistaken for a real one downstream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_ml.errors import FraudMLError
from fraud_ml.schema import ID_COL, LABEL, SOURCE_COL, SYNTHETIC_SOURCES
from fraud_ml.synthetic.frames import split_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamPlan:
    """Row counts of a composed stream."""

    normals: int
    frauds: int
    synthetic_frauds: int
    real_frauds: int

    @property
    def total(self) -> int:
        return self.normals + self.frauds


def plan_stream(
    available_normals: int, fraud_rate: float, synthetic_share: float, n_rows: int | None = None
) -> StreamPlan:
    """Counts for a stream: ``n_frauds = round(fraud_rate * n_total)``, ``synthetic = round(share * n_frauds)``.

    Without ``n_rows`` every available normal is used and the frauds are added on
    top (``n_frauds = round(rate * normals / (1 - rate))``); with ``n_rows`` the
    normals are a sample of ``n_rows - n_frauds``.
    """
    if not 0.0 < fraud_rate < 1.0:
        raise ValueError(f"fraud_rate must be in (0, 1), got {fraud_rate}")
    if not 0.0 <= synthetic_share <= 1.0:
        raise ValueError(f"synthetic_share must be in [0, 1], got {synthetic_share}")
    if n_rows:
        frauds = int(round(fraud_rate * n_rows))
        normals = int(n_rows) - frauds
        if normals > available_normals:
            raise FraudMLError(
                f"a stream of {n_rows} rows needs {normals} normal rows, only {available_normals} "
                "are available: lower synthetic.composer.rows (0 = all normals)"
            )
    else:
        normals = int(available_normals)
        frauds = int(round(fraud_rate * normals / (1.0 - fraud_rate)))
    if frauds < 1:
        needed = int(np.ceil(0.5 * (1.0 - fraud_rate) / fraud_rate))
        raise FraudMLError(
            f"a fraud rate of {fraud_rate:.4%} over {normals} normal rows gives no fraud row "
            f"(needs >= {needed} normals): raise synthetic.composer.fraud_rate or use more data"
        )
    synthetic = int(round(synthetic_share * frauds))
    return StreamPlan(normals=normals, frauds=frauds, synthetic_frauds=synthetic, real_frauds=frauds - synthetic)


def compose_stream(
    validation: pd.DataFrame,
    synthetic_frauds: pd.DataFrame,
    fraud_rate: float = 0.0015,
    synthetic_share: float = 0.6,
    seed: int = 42,
    n_rows: int | None = None,
) -> pd.DataFrame:
    """Validation normals + real validation frauds + synthetic frauds, ordered by Time.

    ``validation``: split rows (id, FEATURES, Class, source). ``synthetic_frauds``:
    rows of a synthetic set (their ``source`` must be smote/wgan/cwgan); only
    ``Class == 1`` rows are used. Rows are drawn without replacement, reproducibly
    by ``seed``; ties in Time are broken randomly. Raises FraudMLError when the
    inputs cannot give the requested counts.
    """
    val = split_rows(validation)
    syn = split_rows(synthetic_frauds)
    syn = syn[syn[LABEL] == 1]
    if len(syn) and not syn[SOURCE_COL].isin(SYNTHETIC_SOURCES).all():
        other = sorted(set(syn[SOURCE_COL]) - set(SYNTHETIC_SOURCES))
        raise FraudMLError(
            f"synthetic_frauds must only hold rows with source in {', '.join(SYNTHETIC_SOURCES)}; found {other}"
        )
    if val[SOURCE_COL].isin(SYNTHETIC_SOURCES).any():
        raise FraudMLError("the validation rows already contain synthetic rows; pass the real validation split")
    normals = val[val[LABEL] == 0]
    real_frauds = val[val[LABEL] == 1]
    plan = plan_stream(len(normals), fraud_rate, synthetic_share, n_rows)
    if plan.real_frauds > len(real_frauds):
        raise FraudMLError(
            f"the stream needs {plan.real_frauds} real frauds, the validation split has "
            f"{len(real_frauds)}: lower synthetic.composer.fraud_rate or raise synthetic_share"
        )
    if plan.synthetic_frauds > len(syn):
        raise FraudMLError(
            f"the stream needs {plan.synthetic_frauds} synthetic frauds, the synthetic set has "
            f"{len(syn)}: generate more (synthetic.wgan.n_samples)"
        )
    rng = np.random.default_rng(seed)
    parts = [
        normals.iloc[np.sort(rng.choice(len(normals), plan.normals, replace=False))],
        real_frauds.iloc[np.sort(rng.choice(len(real_frauds), plan.real_frauds, replace=False))],
        syn.iloc[np.sort(rng.choice(len(syn), plan.synthetic_frauds, replace=False))],
    ]
    stream = pd.concat(parts, ignore_index=True)
    if stream[ID_COL].duplicated().any():
        dup = stream.loc[stream[ID_COL].duplicated(), ID_COL].iloc[0]
        raise FraudMLError(f"transaction ids are not unique in the composed stream (e.g. {dup})")
    tie_break = rng.permutation(len(stream))
    order = np.lexsort((tie_break, stream["Time"].to_numpy()))
    stream = stream.iloc[order].reset_index(drop=True)
    log.info(
        "composed stream: %d rows, %d frauds (%.4f%%): %d synthetic (%s), %d real validation frauds",
        plan.total,
        plan.frauds,
        100.0 * plan.frauds / plan.total,
        plan.synthetic_frauds,
        ",".join(sorted(set(parts[2][SOURCE_COL]))) or "-",
        plan.real_frauds,
    )
    return stream


def stream_summary(stream: pd.DataFrame) -> dict[str, float | int]:
    """Counts and rates of a composed stream (for logs and reports)."""
    frauds = stream[stream[LABEL] == 1]
    synthetic = frauds[SOURCE_COL].isin(SYNTHETIC_SOURCES)
    return {
        "rows": int(len(stream)),
        "frauds": int(len(frauds)),
        "fraud_rate": float(len(frauds) / max(len(stream), 1)),
        "synthetic_frauds": int(synthetic.sum()),
        "real_frauds": int((~synthetic).sum()),
        "synthetic_share": float(synthetic.mean()) if len(frauds) else 0.0,
    }
