"""The one entry point from what Snakemake loaded to the run's checked settings.

The Snakefile hands over the merged ``config`` and which files it came from; this turns it, in
place, into the settings every rule reads, or stops with one short message:

1. ``sections: <file>.tsv`` is read as a sample sheet, each row checked;
2. the schema is checked (one or two lines naming the file and the key, ``txmorph.configcheck``);
3. the schema's defaults are filled in, as ``snakemake.utils.validate`` would: the demo's
   sections are the default of ``sections``, and ``config.yaml`` sets none, so a user's
   ``sections`` (Snakemake's own merge of the config files) are the run's, never mixed with the
   demo's;
4. the checks across keys that the schema cannot express (``txmorph.pipeline.problems``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from txmorph import configcheck, samplesheet
from txmorph.pipeline import problems


class ConfigError(Exception):
    """A config mistake; its text is the whole message for the user."""


def settle(config: dict[str, Any], schema: Mapping[str, Any],
           sources: Sequence[configcheck.Source], verbose: bool = False) -> None:
    """Make ``config`` the run's checked settings, in place, or raise ``ConfigError``.

    Parameters
    ----------
    config : dict[str, Any]
        The config Snakemake merged (changed in place: sheet rows, defaults).
    schema : Mapping[str, Any]
        The config schema, loaded.
    sources : Sequence[configcheck.Source]
        The config files in effect (``configcheck.config_sources``).
    verbose : bool
        Append the full schema report to a schema error.

    Raises
    ------
    ConfigError
        On the first kind of mistake found, with every mistake of that kind.
    """
    if isinstance(config.get("sections"), str):
        try:
            config["sections"] = samplesheet.read_section_sheet(config["sections"], schema)
        except samplesheet.SheetError as error:
            raise ConfigError(str(error)) from None
    if message := configcheck.config_problem(config, schema, sources, verbose=verbose):
        raise ConfigError(message)
    # Before the defaults: `genes` has one (the demo's), so only what the user wrote counts.
    if message := problems.class_mode_problem(config, configcheck.describe_files(sources)):
        raise ConfigError(message)
    configcheck.fill_defaults(config, schema)
    if config["niches"] is not None:
        config["genes"] = None  # the niches are the classes; the demo's default genes are not
    found = problems.config_problems(config)
    if message := problems.config_error(found, configcheck.describe_files(sources)):
        raise ConfigError(message)
