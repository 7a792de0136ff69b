# txmorph: transcriptome-supervised classification of tissue morphology.
# Run: snakemake --cores N   (see README.md; edit config.yaml to use your own data)
import json
import os
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")
# This workflow's own folder: its schema, package, scripts and envs are read from here, also
# when it is used as a module from another folder (the user's config and data paths stay
# relative to the working directory).
TXMORPH_ROOT = Path(str(workflow.current_basedir))
if not (TXMORPH_ROOT / "workflow" / "txmorph").is_dir():
    raise WorkflowError(
        f"txmorph must run from a local copy of its repository (its rule scripts import the "
        f"txmorph package beside the Snakefile), not from {TXMORPH_ROOT}: git clone it and "
        f"point the module's snakefile: at the clone's Snakefile (docs/usage.md, 'Deploy')")
sys.path.insert(0, str(TXMORPH_ROOT / "workflow"))
from txmorph import configcheck, scripting
from txmorph.pipeline import runconfig


configfile: "config.yaml"


# Config mistakes are reported in one or two lines naming the file they are in (the full
# report: TXMORPH_VERBOSE_ERRORS=1). Snakemake keeps no documented list of the files it merged,
# so they are read from its workflow object here, for the messages only: should a Snakemake
# release move them, messages say "the config" and nothing else changes. (A user's `sections`
# replace the demo's by Snakemake's own merge: config.yaml sets none, the schema's default is
# the demo.)
_cli_files = list(getattr(workflow, "overwrite_configfiles", None) or [])
_settings = getattr(workflow, "config_settings", None)
try:
    CONFIG_SOURCES = configcheck.config_sources(
        [] if (_cli_files and getattr(_settings, "replace_workflow_config", False))
        else list(getattr(workflow, "configfiles", []))[len(_cli_files):],
        _cli_files,
        getattr(_settings, "config", None),
    )
except (OSError, TypeError, ValueError):
    CONFIG_SOURCES = []
CONFIG_FILES = configcheck.describe_files(CONFIG_SOURCES)
CONFIG_SCHEMA = yaml.safe_load((TXMORPH_ROOT / configcheck.SCHEMA_FILE).read_text())
# One call from the merged config to the checked settings: sections (or a sample sheet), the
# schema and its defaults, the checks across keys (txmorph.pipeline.runconfig).
try:
    runconfig.settle(config, CONFIG_SCHEMA, CONFIG_SOURCES, verbose=configcheck.verbose_from_env())
except runconfig.ConfigError as error:
    raise WorkflowError(str(error)) from None
# Rule messages name the file a section comes from (txmorph.scripting), not always config.yaml.
os.environ[scripting.SECTION_FILES_ENV] = json.dumps(
    configcheck.section_sources(CONFIG_SOURCES, config["sections"]))


# The image built from ./Dockerfile (`snakemake --containerize > Dockerfile`); used with
# `--sdm apptainer` (or `--sdm conda apptainer`). See README.md, "Reproducibility".
if config["container"]:

    containerized: config["container"]


# One rule file per stage, in the order data flows; each pairs with the txmorph module or
# subpackage of the same name (docs/ARCHITECTURE.md).
include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/io.smk"
include: "workflow/rules/tissue.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/niches.smk"
include: "workflow/rules/truth.smk"
include: "workflow/rules/patches.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/probmap.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/genes.smk"
include: "workflow/rules/spatialdata.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
