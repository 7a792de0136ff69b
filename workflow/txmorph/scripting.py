"""Glue for Snakemake ``script:`` rules: logging to the rule's log file and clean user errors.

A rule script is ``run_rule(main, snakemake)``; ``main(smk, log)`` does the work. Bad input
(``InputError``) ends the job with the message alone, on the console and in the log, and a
non-zero exit, so Snakemake deletes the job's outputs and the user reads one actionable line
instead of a traceback. Any other exception is a bug: its traceback goes to the log.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from txmorph.errors import InputError


def rule_logger(log_path: str | None, name: str) -> logging.Logger:
    """A logger writing timestamped lines to the rule's log file and to stderr."""
    logger = logging.getLogger(f"txmorph.{name}")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def run_rule(main: Callable[[Any, logging.Logger], None], smk: Any) -> None:
    """Run ``main(smk, logger)`` for a Snakemake job; see the module docstring."""
    log_path = smk.log[0] if len(smk.log) else None
    logger = rule_logger(log_path, smk.rule)
    started = time.perf_counter()
    try:
        main(smk, logger)
    except InputError as error:
        logger.error("%s", error)
        sys.exit(1)
    except Exception:
        logger.exception("rule %s failed with an unexpected error (a bug: please report it)", smk.rule)
        raise
    logger.info("rule %s finished in %.1f s", smk.rule, time.perf_counter() - started)
