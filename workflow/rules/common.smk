# Helpers shared by the rules: config look-ups, cross-field checks, target lists.
import ast
import functools
import json
import math
import os
import zlib
from pathlib import Path

from snakemake.exceptions import WorkflowError

from txmorph.classes import class_names

# Rule scripts import the txmorph package from this checkout, also inside conda envs and
# containers where it is not pip-installed.
PACKAGE_ROOT = str(TXMORPH_ROOT / "workflow")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [PACKAGE_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

# Inside the working directory (the usual checkout-as-workdir case) code inputs are relative,
# so that moving the checkout with its results does not look like a change of inputs.
PACKAGE_DIR = Path(PACKAGE_ROOT, "txmorph")
SCRIPTS_DIR = Path(PACKAGE_ROOT, "scripts")
if PACKAGE_DIR.resolve().is_relative_to(Path.cwd().resolve()):
    PACKAGE_DIR = PACKAGE_DIR.resolve().relative_to(Path.cwd().resolve())

SECTIONS = list(config["sections"])
PATCH_SIZES = sorted(config["patches"]["sizes"])
# Gene classes: {class name: its genes}. A plain list of genes is one class per gene.
GROUPS = (
    {name: list(genes) for name, genes in config["genes"].items()}
    if isinstance(config["genes"], dict) else {gene: [gene] for gene in config["genes"]}
)
# Every gene named in `genes` (the import checks that each is in the spot tables).
GENES = [gene for genes in GROUPS.values() for gene in genes]
CLASSES = class_names(GROUPS)
MODELS = [f"size{size}" for size in PATCH_SIZES] + ["ensemble"]
# The non-CNN baseline (workflow/rules/baseline.smk): scored like the CNNs, not in the ensemble.
BASELINE = "baseline"
SCORED_MODELS = MODELS + [BASELINE]


def sections_with_role(role):
    return [name for name, section in config["sections"].items() if section["role"] == role]


TRAIN_SECTIONS = sections_with_role("train")
TEST_SECTIONS = sections_with_role("test")
# Prediction-only sections: an image, no spots; mapped, never scored.
PREDICT_SECTIONS = sections_with_role("predict")
# Sections that get probability maps, arg-max labels, figures and exports.
MAPPED_SECTIONS = TEST_SECTIONS + PREDICT_SECTIONS
# `models:` (workflow/rules/models.smk): trained models of another run replace training.
REUSED_MODELS = config["models"]
TRAINING = not REUSED_MODELS
# training.pretrain: one self-supervised encoder from every section's DAPI (rule pretrain).
PRETRAIN = TRAINING and config["training"]["pretrain"]["method"] != "none"
ENCODER = "results/models/encoder.pt"
# probmap.ensemble weighted | best: the sizes' weights, fitted on validation patches.
ENSEMBLE_WEIGHTS = "results/models/ensemble.json"
# Sections whose spots are imported and checked (check_section): train sections only when
# this run trains.
CHECKED_SECTIONS = (TRAIN_SECTIONS if TRAINING else []) + TEST_SECTIONS


def check_config():
    """Checks across fields that the JSON schema cannot express, before any job runs."""
    from txmorph.roles import spots_problem

    problems = []
    if TRAINING and not TRAIN_SECTIONS:
        problems.append("no section has role: train (at least one is needed to train models; "
                        "or set `models:` to the results/models folder of a finished run)")
    if not MAPPED_SECTIONS:
        problems.append("no section has role: test or predict (at least one is needed to "
                        "apply the models to)")
    problems += [problem for name in SECTIONS
                 if (problem := spots_problem(name, config["sections"][name]))]
    network_input = config["training"]["network_input"]
    for size in PATCH_SIZES:
        if size % network_input:
            problems.append(
                f"patches.sizes: {size} is not a multiple of training.network_input "
                f"({network_input}); patches are average-pooled by an integer factor"
            )
    repeated = sorted({gene for gene in GENES if GENES.count(gene) > 1})
    if repeated:
        problems.append(
            f"genes: {', '.join(repeated)} belong to more than one class; each gene may mark "
            "one class only"
        )
    for key in config["training"]["per_size"]:
        if str(key) not in {str(size) for size in PATCH_SIZES}:
            problems.append(
                f"training.per_size: {key!r} is not one of patches.sizes {PATCH_SIZES}"
            )
    if PRETRAIN:
        for key, overrides in config["training"]["per_size"].items():
            if "widths" in overrides and list(overrides["widths"]) != list(config["training"]["widths"]):
                problems.append(
                    f"training.per_size: {key}: widths {overrides['widths']} differ from "
                    f"training.widths, but training.pretrain trains one encoder for every size; "
                    f"drop the override or set training.pretrain.method: none")
    if REUSED_MODELS and config["probmap"]["ensemble"] != "mean":
        weights = Path(REUSED_MODELS) / "ensemble.json"
        method = json.loads(weights.read_text())["method"] if weights.is_file() else None
        if method != config["probmap"]["ensemble"]:
            problems.append(
                f"probmap.ensemble: {config['probmap']['ensemble']} needs the weights fitted "
                f"where the models were trained, but {weights} "
                + ("does not exist" if method is None else f"was fitted as {method!r}")
                + "; set probmap.ensemble to what the models were run with, or mean")
    if problems:
        raise WorkflowError(
            # CONFIG_FILES (Snakefile): the config files in effect, e.g. config.yaml + my.yaml
            f"Config error in {CONFIG_FILES}:\n  - " + "\n  - ".join(problems)
        )


check_config()


# The class definitions (thresholds fitted on the training sections, rule reference; with
# `models:` the reused models' own, copied in): every section's reference regions apply them.
REFERENCE = "results/models/reference.json"


def truth_settings():
    """The settings a class definition is fitted with, and a reused one must share."""
    from txmorph.reference import SETTING_KEYS

    return {key: config["truth"][key] for key in SETTING_KEYS}


def reused_model_set():
    """The models of `models:` checked against this config before any job (txmorph.models):
    one line naming what differs, the model file and what to do."""
    from snakemake.logging import logger
    from txmorph.baseline import window_sizes
    from txmorph.reuse import Expected, ModelSetError, check_model_set

    expected = Expected(CLASSES, PATCH_SIZES, config["training"]["network_input"],
                        groups=GROUPS, truth=truth_settings())
    try:
        found = check_model_set(REUSED_MODELS, expected, window_sizes(PATCH_SIZES),
                                own_folder="results/models")
    except ModelSetError as error:
        raise WorkflowError(str(error)) from None
    for note in found.notes:
        logger.warning(note)
    return found


MODEL_SET = reused_model_set() if REUSED_MODELS else None
if MODEL_SET is not None and MODEL_SET.baseline is None:
    SCORED_MODELS.remove(BASELINE)  # the reused folder has no baseline that fits
# What the models learned (classes, those left out and why): from rule centres when training,
# from the reused models' metadata otherwise (workflow/rules/models.smk).
LEARNED_CLASSES = "results/patches/classes.json" if TRAINING else "results/models/classes.json"


wildcard_constraints:
    section="|".join(SECTIONS),
    size=r"\d+",


@functools.cache
def _txmorph_imports(path):
    """The txmorph modules one Python file imports, dotted below the package ("canonical",
    "io.images"): ``from txmorph.x import``, ``from txmorph.io.x import``, ``from txmorph import
    x``, ``from txmorph.io import x``, ``import txmorph.x``. A name that is not a module (a
    function of ``from txmorph.io import``) is dropped by ``script_code``."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "txmorph":
            below = node.module.split(".")[1:]
            if below:
                found.add(".".join(below))
            found.update(".".join([*below, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".", 1)[1] for a in node.names
                         if a.name.startswith("txmorph."))
    return frozenset(found)


def _module_file(name):
    """The file of txmorph module ``name`` ("io.images" -> txmorph/io/images.py), or None for
    a package (its ``__init__.py`` holds no code) or a name that is not a module."""
    path = Path(PACKAGE_ROOT, "txmorph", *name.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def script_code(script):
    """Every txmorph module a rule script uses, directly or through other modules, as inputs:
    editing any of them re-runs the rule, and they are part of the key of cached rules.
    Derived from the imports, so the list cannot fall behind the code."""
    names, todo = set(), list(_txmorph_imports(SCRIPTS_DIR / script))
    while todo:
        name = todo.pop()
        if name not in names and _module_file(name) is not None:
            names.add(name)
            todo.extend(_txmorph_imports(_module_file(name)))
    return [str(PACKAGE_DIR.joinpath(*name.split(".")).with_suffix(".py"))
            for name in sorted(names)]


def probmap_mem_mb(wildcards, attempt):
    """Memory (MB) of one probmap job: it grows with the tile, not with the section.

    The section is read window by window and the map written tile by tile, so a job holds
    torch (~350 MB) plus one (tile_size + patch_size)^2 window: its input copies and feature
    maps. Measured peaks (1024-px tiles, 2 threads): 500 MB (size 32) and 334 MB (size 160)
    at the native stride, 773 and 871 MB at output stride 1, whose feature maps are at full
    resolution; hence ~192 bytes per window pixel at the native stride, 512 at finer ones,
    plus 384 MB. Doubled on each retry (`retries` in the SLURM profile).
    """
    window = config["probmap"]["tile_size"] + int(wildcards.size)
    per_pixel = 192 if config["probmap"]["output_stride"] == "native" else 512
    return (384 + math.ceil(per_pixel * window**2 / 2**20)) * attempt


def section_config(section):
    return config["sections"][section]


@functools.cache
def pixel_size_of(name):
    """µm per pixel of a section's image as read: config.yaml, else the image's OME metadata."""
    section = section_config(name)
    if section.get("pixel_size_um"):
        return section["pixel_size_um"]
    from txmorph.errors import InputError
    from txmorph.io.images import open_image

    fix = f"set 'pixel_size_um' for section '{name}' in config.yaml"
    if not Path(section["image"]).is_file():
        raise WorkflowError(f"section '{name}': image {section['image']} not found; {fix}")
    raw_input_fingerprint(name, "image")  # an unreadable image: say so, not "corrupt"
    try:
        with open_image(section["image"], level=section.get("level", 0),
                        channel=section.get("channel"),
                        z_projection=section.get("z_projection", "max")) as image:
            found = image.pixel_size_um
    except InputError as error:
        raise WorkflowError(str(error)) from None
    if not found:
        raise WorkflowError(
            f"section '{name}': the image {section['image']} does not record its pixel size "
            f"(no OME PhysicalSizeX); {fix}"
        )
    return found


def section_params(name):
    """What later rules read about one section, JSON-serialisable (complete cache keys).

    They read the canonical image and spot table written by import_image/import_spots
    (through txmorph.io.canonical), whose pixels are ``downsample`` times larger than the
    original ones.
    """
    section = section_config(name)
    return {
        "name": name,
        "pixel_size_um": pixel_size_of(name) * section.get("downsample", 1),
    }


IMPORT_KEYS = ("level", "channel", "z_projection", "downsample", "region", "spots_format",
               "pixel_size_um", "units", "origin_um", "transform", "min_qv", "fov_positions",
               "columns", "spots_outside_image")


def import_params(name):
    """Everything import_image/import_spots read about one section (its config block, with
    the schema's defaults filled in by validation; None for keys without one)."""
    section = section_config(name)
    params = {key: section.get(key) for key in IMPORT_KEYS}
    params.update(name=name, pixel_size_um=pixel_size_of(name))
    return params


def spot_side_files(wildcards):
    """Files besides the spot table that a section's spots need (transform, FOV positions)."""
    return side_files_of(wildcards.section)


def side_files_of(name):
    section = section_config(name)
    files = [section["fov_positions"]] if section.get("fov_positions") else []
    if isinstance(section.get("transform"), str):
        files.append(section["transform"])
    return files


def raw_input_fingerprint(name, key):
    """The content fingerprint of a section's raw input ``key`` (image, spots, transform,
    fov_positions), for the import rules' params: a changed file re-runs its import whatever
    its timestamp (txmorph.io.fingerprint; cached, so an unchanged file costs one stat).

    None when the file does not exist (yet): a rule may make it (the demo), else Snakemake
    reports the missing input. A file that cannot be read stops the run here, while the DAG
    is built and before any job runs, with a message naming the section and the file.
    """
    path = section_config(name).get(key)
    if not isinstance(path, str):
        return None
    import sys

    if PACKAGE_ROOT not in sys.path:  # e.g. Snakemake outside the env where txmorph is installed
        sys.path.append(PACKAGE_ROOT)
    from txmorph.io.fingerprint import cached_fingerprint
    from txmorph.scripting import unreadable_input_message

    try:
        return cached_fingerprint(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise WorkflowError(unreadable_input_message(path, error, section=name, key=key)) from None


def image_fingerprint(wildcards):
    return raw_input_fingerprint(wildcards.section, "image")


def spots_fingerprints(wildcards):
    """Fingerprints of the spot table and of its side files (transform, fov_positions)."""
    section = section_config(wildcards.section)
    return {key: raw_input_fingerprint(wildcards.section, key)
            for key in ("spots", "transform", "fov_positions") if isinstance(section.get(key), str)}


def training_params(size):
    """Training hyper-parameters for one patch size: the defaults, then its overrides.
    (network_input is the model's shape, passed on its own; device and threads say where.)"""
    base = {
        key: value
        for key, value in config["training"].items()
        if key not in ("per_size", "device", "threads", "network_input", "pretrain")
    }
    overrides = config["training"]["per_size"]
    base.update(overrides.get(str(size), overrides.get(int(size), {})))
    return base


def native_stride(size):
    """Output stride of the CNN of one patch size at its native resolution (txmorph.probmap.grid)."""
    from txmorph.probmap.grid import native_stride as stride_of

    blocks = len(training_params(size)["widths"])
    return stride_of(size, config["training"]["network_input"], blocks)


def demo_seed(section):
    """A seed per demo section: the demo seed mixed with the section's name."""
    return [config["demo"]["seed"], zlib.crc32(section.encode())]


def is_demo_section(name):
    section = section_config(name)
    return all(
        Path(section[key]).parent == Path("resources/demo") / name
        for key in ("image", "spots") if key in section
    )


def final_outputs():
    outputs = ["results/report/dice.csv", "results/report/summary.md"]
    # On demo sections the reference regions can also be checked against the true regions.
    outputs += [
        f"results/report/demo_truth/{name}.csv" for name in TEST_SECTIONS if is_demo_section(name)
    ]
    # Figures and tables of the HTML report (workflow/rules/report.smk). Patches and training
    # curves belong to the run that trains; reused models come without them.
    if TRAINING:
        outputs += ["results/report/patch_counts.csv", "results/report/training_curves.png"]
        outputs += [f"results/report/patches/size{size}.png" for size in PATCH_SIZES]
    outputs += ["results/report/dice_chart.png"] if TEST_SECTIONS else []
    outputs += [
        f"results/report/probmaps/{name}/{model}.png" for name in MAPPED_SECTIONS
        for model in MODELS
    ]
    # Arg-max labels of every mapped section; prediction-only sections' tissue (from DAPI).
    outputs += [f"results/labels/{name}.tif" for name in MAPPED_SECTIONS]
    outputs += [f"results/masks/{name}.tif" for name in PREDICT_SECTIONS]
    outputs += spatialdata_outputs()  # workflow/rules/spatialdata.smk (export.spatialdata)
    return outputs


def tissue_spots_input(name):
    """The spots the tissue mask is made from: none where it comes from DAPI alone (also for
    prediction-only sections, whose spots are never read)."""
    from txmorph.roles import uses_spots

    if config["tissue_mask"]["source"] == "dapi" or not uses_spots(section_config(name)):
        return []
    return f"results/sections/{name}/spots.parquet"


def check_settings():
    """Thresholds of the input checks (txmorph.checks.CheckSettings), from the config."""
    checks = config["checks"]
    return {
        "min_fraction_in_tissue": checks["min_fraction_in_tissue"],
        "min_tissue_covered": checks["min_tissue_covered"],
        "min_spots_per_region": config["truth"]["min_spots_per_region"],
    }


# The input checks of all CHECKED_SECTIONS in one file (rule inputs_checked).
ALL_CHECKS = "results/sections/checks.json"


def checks_of(sections):
    return [f"results/sections/{name}/checks.json" for name in sections]
