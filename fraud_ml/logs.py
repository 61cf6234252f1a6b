"""Logging setup shared by jobs."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure root logging once and quieten chatty libraries."""
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO), format=_FORMAT, force=True)
    for noisy in ("py4j", "urllib3", "alembic", "mlflow.store.db.utils", "numba", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
