"""script_code (workflow/rules/common.smk): the package modules a rule script imports, also those
of the subpackage txmorph.io, are the rule's `code` input, so editing one re-runs exactly the
rules that use it."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script_code():
    """common.smk's script_code, run outside Snakemake (the file is not plain Python, so the
    functions from _txmorph_imports to script_code are executed on their own)."""
    source = (REPO / "workflow/rules/common.smk").read_text()
    start = source.index("@functools.cache\ndef _txmorph_imports")
    end = source.index("\ndef ", source.index("def script_code("))
    namespace = {"ast": ast, "functools": functools, "Path": Path,
                 "PACKAGE_ROOT": str(REPO / "workflow"), "PACKAGE_DIR": Path("workflow/txmorph"),
                 "SCRIPTS_DIR": REPO / "workflow/scripts"}
    exec(source[start:end], namespace)
    return lambda script: [p.removeprefix("workflow/txmorph/")
                           for p in namespace["script_code"](script)]


def test_subpackage_modules_are_listed_transitively():
    code = script_code()
    spots = code("import_spots.py")
    assert {"io/spots.py", "io/vendors.py", "io/tables.py", "io/collector.py",
            "io/coordinates.py", "io/files.py", "errors.py"} <= set(spots)
    assert "io/images.py" not in spots  # editing the image reader does not re-run spot imports
    image = code("import_image.py")
    assert {"io/images.py", "io/tiffplanes.py", "io/imagewrite.py", "io/files.py"} <= set(image)
    assert "io/vendors.py" not in image
    assert "io/__init__.py" not in image  # the package file holds no code


def test_rules_after_import_depend_on_the_canonical_reader_only():
    code = script_code()
    for script in ("probmap.py", "truth.py", "centres.py", "dapi_mask.py", "gene_candidates.py"):
        listed = code(script)
        assert "io/canonical.py" in listed, script
        assert not [m for m in listed if m.startswith("io/") and m != "io/canonical.py"], script


def test_model_running_rules_do_not_depend_on_the_training_code():
    # Editing the augmentation or the training loop must not re-run every cached map.
    code = script_code()
    for script in ("probmap.py", "ensemble.py"):
        listed = code(script)
        assert [m for m in listed if m.startswith("train/")] == ["train/model.py"], script
    assert "train/training.py" not in code("pretrain.py")
