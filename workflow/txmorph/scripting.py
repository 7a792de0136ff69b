"""Glue for Snakemake ``script:`` rules: logging to the rule's log file and clean user errors.

A rule script is ``run_rule(main, snakemake)``; ``main(smk, log)`` does the work. Bad input
(``InputError``) ends the job with the message alone, on the console and in the log, and a
non-zero exit, so Snakemake deletes the job's outputs and the user reads one actionable line
instead of a traceback. So does an input the job cannot read (``PermissionError`` or
``FileNotFoundError``, also when a reader wrapped it in an ``InputError``) and a
``PermissionError`` on any other file: the message names the section, the file and what to do
(``unreadable_input_message``, also used by the workflow while building the DAG). Any other
exception is a bug: its traceback goes to the log.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from txmorph.errors import InputError


def rule_logger(log_path: str | None, name: str) -> logging.Logger:
    """A logger writing timestamped lines to the rule's log file and to stderr.

    Parameters
    ----------
    log_path : str or None
        The rule's log file (overwritten); None logs to stderr only.
    name : str
        The logger's name (the rule).

    Returns
    -------
    logging.Logger
        The configured logger.
    """
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


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return f"uid {os.geteuid()}" if hasattr(os, "geteuid") else "this user"


def unreadable_input_message(path: str | os.PathLike, error: OSError, *, section: str | None = None,
                             key: str | None = None, is_input: bool = True) -> str:
    """One line for an input that cannot be read: the section, the file, what is wrong, the fix.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    error : OSError
        What reading it raised.
    section : str or None
        The section the file belongs to, if any.
    key : str or None
        The section's config key of the file (image, spots, transform, fov_positions).
    is_input : bool
        Whether the file is an input (False: an output or working file).

    Returns
    -------
    str
        The message.
    """
    where = f"section '{section}': " if section else ""
    what = f"the {key} file" if key else "the input file" if is_input else "the file"
    if isinstance(error, FileNotFoundError):
        fix = (f"Check the '{key}' path of this section in config.yaml." if key else
               "Check the paths in config.yaml.")
        return f"{where}{what} '{path}' was not found. {fix}"
    if not is_input:
        return (f"{where}{what} '{path}' cannot be accessed: permission denied for user "
                f"'{_user_name()}'. Check the permissions of it and its folders, or run txmorph "
                "as a user who may read and write them.")
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return (f"{where}{what} '{path}' cannot be read: permission denied for user "
                f"'{_user_name()}'. Make it readable (e.g. chmod a+r '{path}', and a+x on its "
                "folders) or run txmorph as a user who can read it.")
    reason = error.strerror or str(error)
    return (f"{where}{what} '{path}' cannot be read ({reason}). Check that it is a complete "
            "copy on a mounted, readable file system.")


def _input_problem(error: BaseException, smk: Any) -> str | None:
    """A clear message when ``error`` is (or was caused by) a PermissionError on any file or a
    FileNotFoundError on an input of the job; None otherwise."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, (PermissionError, FileNotFoundError)):
        cause = cause.__cause__
    if cause is None:
        return None
    wildcards = getattr(smk, "wildcards", None)
    section = getattr(wildcards, "section", None)
    path, key, is_input = cause.filename, None, False
    if path is not None:
        target = os.path.abspath(os.fsdecode(path))
        items = getattr(getattr(smk, "input", None), "items", None)
        for name, value in (items() if callable(items) else []):
            for item in [value] if isinstance(value, (str, os.PathLike)) else list(value):
                if os.path.abspath(os.fspath(item)) == target:
                    path, is_input = item, True
                    key = name if name in ("image", "spots") else None
    if isinstance(cause, FileNotFoundError) and not is_input:
        return None
    return unreadable_input_message(path if path is not None else "?", cause, section=section,
                                    key=key, is_input=is_input)


#: Environment variable (set by the Snakefile): JSON, section name -> the config file or sample
#: sheet that defines it, so that messages about a section's settings name the right file.
SECTION_FILES_ENV = "TXMORPH_SECTION_FILES"
DEFAULT_CONFIG = "config.yaml"


def name_config_file(message: str, section: str | None) -> str:
    """``message`` with "config.yaml" replaced by the file that defines ``section``.

    Parameters
    ----------
    message : str
        A message for the user; input messages say "config.yaml" for "your config".
    section : str or None
        The job's section (its ``section`` wildcard).

    Returns
    -------
    str
        The message, naming the section's own file where it is known and not config.yaml.
    """
    if section is None or DEFAULT_CONFIG not in message:
        return message
    try:
        files = json.loads(os.environ.get(SECTION_FILES_ENV, "{}"))
    except ValueError:
        return message
    source = files.get(section)
    return message.replace(DEFAULT_CONFIG, source) if source else message


def run_rule(main: Callable[[Any, logging.Logger], None], smk: Any) -> None:
    """Run ``main(smk, logger)`` for a Snakemake job; see the module docstring.

    Parameters
    ----------
    main : Callable[[Any, logging.Logger], None]
        The rule's work.
    smk : Any
        The ``snakemake`` object of the script.
    """
    log_path = smk.log[0] if len(smk.log) else None
    logger = rule_logger(log_path, smk.rule)
    started = time.perf_counter()
    try:
        main(smk, logger)
    except (InputError, OSError) as error:
        message = _input_problem(error, smk)
        if message is None and not isinstance(error, InputError):
            logger.exception("rule %s failed with an unexpected error (a bug: please report it)",
                             smk.rule)
            raise
        section = getattr(getattr(smk, "wildcards", None), "section", None)
        logger.error("%s", name_config_file(str(message or error), section))
        sys.exit(1)
    except Exception:
        logger.exception("rule %s failed with an unexpected error (a bug: please report it)", smk.rule)
        raise
    logger.info("rule %s finished in %.1f s", smk.rule, time.perf_counter() - started)
