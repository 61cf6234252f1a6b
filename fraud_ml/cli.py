"""Shared plumbing for the thin job entry points in ``jobs/``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from typing import Callable, TypeVar

from fraud_ml.config import Config, add_config_arguments, config_from_args
from fraud_ml.errors import FraudMLError
from fraud_ml.logs import setup_logging

log = logging.getLogger("fraud_ml")
T = TypeVar("T")


def job_parser(description: str) -> argparse.ArgumentParser:
    """An argparse parser with the shared ``--conf``/``--set`` options."""
    return add_config_arguments(argparse.ArgumentParser(description=description))


def options_from_args(cls: type[T], args: argparse.Namespace, **values) -> T:
    """An options dataclass from the parsed arguments of the same names (``dest``), and ``values``."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, **values})


def one_line(exc: BaseException) -> str:
    """The first meaningful line of an exception, without a JVM stack trace."""
    text = str(exc).strip() or type(exc).__name__
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), text)
    return first[:500]


def interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a job that owns child processes (a broker, a stream, a
    browser) runs its cleanup when it is terminated, as on Ctrl-C, instead of leaving them running."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_job(
    main: Callable[[argparse.Namespace, Config], int | None],
    parser: argparse.ArgumentParser,
    argv: list[str] | None = None,
    extra_overrides: Callable[[argparse.Namespace], list[str]] | None = None,
) -> int:
    """Parse args, load config, set up logging, run ``main``; errors become one clear line and exit 2."""
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, extra_overrides(args) if extra_overrides else [])
        setup_logging(cfg.get("project.log_level"))
        return int(main(args, cfg) or 0)
    except FraudMLError as exc:
        logging.getLogger("fraud_ml").error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # Spark/Py4J errors: say what failed first, keep the trace at debug level
        log.debug("traceback of the failure", exc_info=True)
        print(
            f"error: {type(exc).__name__}: {one_line(exc)} (rerun with --set project.log_level=DEBUG for the trace)",
            file=sys.stderr,
        )
        return 1
