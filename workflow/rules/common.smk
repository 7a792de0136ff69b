# The run's constants, input functions and targets, shared by the rule files. Each function is
# a thin call into txmorph.pipeline (the logic, unit-tested without Snakemake) with this run's
# config; a user's mistake there (InputError) stops the run as a WorkflowError, message unchanged.
import functools
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from txmorph.classes import class_names
from txmorph.errors import InputError
from txmorph.pipeline import code_inputs, problems, rawinputs, settings, targets
from txmorph.roles import PREDICT, TEST, TRAIN

# Rule scripts import the txmorph package of this checkout, also inside conda envs and
# containers where it is not pip-installed (txmorph.pipeline.code_inputs).
PACKAGE_ROOT = TXMORPH_ROOT / "workflow"
code_inputs.put_package_on_pythonpath(str(PACKAGE_ROOT))
SCRIPTS_DIR = PACKAGE_ROOT / "scripts"
# Code inputs are relative to the working directory when the package lies inside it.
CODE_DIR = code_inputs.listed_package_dir(PACKAGE_ROOT, Path.cwd())

SECTIONS = list(config["sections"])
PATCH_SIZES = targets.patch_sizes(config)
# `niches: K` (workflow/rules/niches.smk): the classes are K expression niches, not genes.
NICHES = config["niches"]
# Gene classes: {class name: its genes}. A plain list of genes is one class per gene; a niche's
# "gene" is its name (the niche spot tables, class_spots, carry it in their gene column).
GROUPS = settings.gene_groups(config)
# Every gene named in `genes` (the import checks that each is in the spot tables).
GENES = [] if NICHES else [gene for genes in GROUPS.values() for gene in genes]
CLASSES = class_names(GROUPS)
MODELS = targets.model_names(config)
# The non-CNN baseline (workflow/rules/baseline.smk): scored like the CNNs, not in the ensemble.
BASELINE = targets.BASELINE
SCORED_MODELS = MODELS + [BASELINE]
BASELINE_NUCLEUS_UM = 8.0  # nucleus diameter for the baseline's nuclear-density feature
BASELINE_L2 = 1e-3  # L2 penalty of the baseline's logistic regression (standardised features)
BASELINE_FEATURES = config["baseline"]["features"]  # its feature set (txmorph.baseline.FEATURE_SETS)

TRAIN_SECTIONS = targets.sections_with_role(config, TRAIN)
TEST_SECTIONS = targets.sections_with_role(config, TEST)
# Prediction-only sections: an image, no spots; mapped, never scored.
PREDICT_SECTIONS = targets.sections_with_role(config, PREDICT)
# Sections that get probability maps, arg-max labels, figures and exports.
MAPPED_SECTIONS = targets.mapped_sections(config)
# `models:` (workflow/rules/models.smk): trained models of another run replace training.
REUSED_MODELS = config["models"]
TRAINING = targets.is_training(config)
# training.pretrain: one self-supervised encoder from every section's DAPI (rule pretrain).
PRETRAIN = TRAINING and config["training"]["pretrain"]["method"] != "none"
ENCODER = "results/models/encoder.pt"
# probmap.ensemble weighted | best: the sizes' weights, fitted on validation patches.
ENSEMBLE_WEIGHTS = "results/models/ensemble.json"
# Sections whose spots are imported and checked (check_section): train sections only when
# this run trains.
CHECKED_SECTIONS = targets.checked_sections(config)
# The input checks of all CHECKED_SECTIONS in one file (rule inputs_checked).
ALL_CHECKS = "results/sections/checks.json"
# The class definitions (thresholds fitted on the training sections, rule reference; with
# `models:` the reused models' own, copied in): every section's reference regions apply them.
REFERENCE = "results/models/reference.json"
# What the models learned (classes, those left out and why): from rule centres when training,
# from the reused models' metadata otherwise (workflow/rules/models.smk).
LEARNED_CLASSES = "results/patches/classes.json" if TRAINING else "results/models/classes.json"
# What import_image/import_spots read of a section: the schema's section keys (one list).
IMPORT_KEYS = settings.import_keys(CONFIG_SCHEMA)


def user_error(function, *args):
    """``function(*args)``; a user's mistake (InputError) as a WorkflowError, same message."""
    try:
        return function(*args)
    except InputError as error:
        raise WorkflowError(str(error)) from None


# The models of `models:`, checked against this config before any job (txmorph.reuse).
MODEL_SET = user_error(problems.reused_model_set, config) if REUSED_MODELS else None
for note in MODEL_SET.notes if MODEL_SET is not None else []:
    logger.warning(note)
if MODEL_SET is not None and MODEL_SET.baseline is None:
    SCORED_MODELS.remove(BASELINE)  # the reused folder has no baseline that fits


wildcard_constraints:
    section="|".join(SECTIONS),
    size=r"\d+",


def script_code(script):
    """Every txmorph module a script imports, also through other modules (its `code` input)."""
    return code_inputs.script_code(SCRIPTS_DIR / script, PACKAGE_ROOT, CODE_DIR)


def section_config(section):
    return config["sections"][section]


@functools.cache
def pixel_size_of(name):
    """µm per pixel of a section's image as read: config.yaml, else the image's OME metadata."""
    return user_error(rawinputs.pixel_size_of, name, section_config(name))


def section_params(name):
    """Name and pixel size of a section's canonical image, for the rules after import."""
    return settings.section_params(name, section_config(name), pixel_size_of(name))


def import_params(name):
    return settings.import_params(name, section_config(name), IMPORT_KEYS, pixel_size_of(name))


def spot_side_files(wildcards):
    return settings.side_files(section_config(wildcards.section))


def image_fingerprint(wildcards):
    section = section_config(wildcards.section)
    return user_error(rawinputs.raw_input_fingerprint, wildcards.section, section, "image")


def spots_fingerprints(wildcards):
    section = section_config(wildcards.section)
    return user_error(rawinputs.spots_fingerprints, wildcards.section, section)


def checks_of(sections):
    return [f"results/sections/{name}/checks.json" for name in sections]


def probmap_mem_mb(wildcards, attempt):
    return settings.probmap_mem_mb(config, wildcards.size, attempt)


# Look-ups in this run's config (txmorph.pipeline.settings and .targets).
training_params = functools.partial(settings.training_params, config)
native_stride = functools.partial(settings.native_stride, config)
tissue_spots_input = functools.partial(settings.tissue_spots_input, config)
truth_settings = functools.partial(settings.truth_settings, config)
check_settings = functools.partial(settings.check_settings, config)
baseline_stride = functools.partial(settings.baseline_stride, config)
baseline_windows = functools.partial(settings.baseline_windows, config)
demo_seed = functools.partial(settings.demo_seed, config)
probmap_seed = functools.partial(settings.probmap_seed, config)
final_outputs = functools.partial(targets.final_outputs, config)
class_spots = functools.partial(settings.class_spots, config)
