"""script_code (txmorph.pipeline.code_inputs, bound in workflow/rules/common.smk): the package
modules a rule script imports, also those of the subpackage txmorph.io, are the rule's `code`
input, so editing one re-runs exactly the rules that use it."""

from __future__ import annotations

import os
from pathlib import Path

from txmorph.pipeline import code_inputs

REPO = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO / "workflow"


def script_code(script: str) -> list[str]:
    """The code inputs of one rule script, as common.smk lists them from the checkout, below
    the package folder."""
    listed = code_inputs.script_code(PACKAGE_ROOT / "scripts" / script, PACKAGE_ROOT,
                                     Path("workflow/txmorph"))
    return [path.removeprefix("workflow/txmorph/") for path in listed]


def test_subpackage_modules_are_listed_transitively():
    spots = script_code("import_spots.py")
    assert {"io/spots.py", "io/vendors.py", "io/tables.py", "io/collector.py",
            "io/coordinates.py", "io/files.py", "errors.py"} <= set(spots)
    assert "io/images.py" not in spots  # editing the image reader does not re-run spot imports
    image = script_code("import_image.py")
    assert {"io/images.py", "io/tiffplanes.py", "io/imagewrite.py", "io/files.py"} <= set(image)
    assert "io/vendors.py" not in image
    assert "io/__init__.py" not in image  # the package file holds no code


def test_rules_after_import_depend_on_the_canonical_reader_only():
    for script in ("probmap.py", "truth.py", "centres.py", "dapi_mask.py", "gene_candidates.py"):
        listed = script_code(script)
        assert "io/canonical.py" in listed, script
        assert not [m for m in listed if m.startswith("io/") and m != "io/canonical.py"], script


def test_model_running_rules_do_not_depend_on_the_training_code():
    # Editing the augmentation or the training loop must not re-run every cached map.
    code = script_code
    for script in ("probmap.py", "ensemble.py"):
        listed = code(script)
        assert [m for m in listed if m.startswith("train/")] == ["train/model.py"], script
    assert "train/training.py" not in code("pretrain.py")


def test_every_import_form_is_found(tmp_path):
    script = tmp_path / "rule.py"
    script.write_text("import os\nimport txmorph.errors\nfrom txmorph import classes\n"
                      "from txmorph.io import canonical, read_image\n"
                      "from txmorph.io.spots import crop_spots\n"
                      "def f():\n    from txmorph.probmap.grid import native_stride\n")
    assert code_inputs.txmorph_imports(script) == {
        "errors", "classes", "io", "io.canonical", "io.read_image", "io.spots",
        "io.spots.crop_spots", "probmap.grid", "probmap.grid.native_stride"}
    listed = code_inputs.script_code(script, PACKAGE_ROOT, Path("pkg"))
    # Names that are not modules (functions, packages) are dropped; paths are sorted by module.
    assert listed[:2] == [str(Path("pkg/classes.py")), str(Path("pkg/errors.py"))]
    assert str(Path("pkg/io/read_image.py")) not in listed
    assert str(Path("pkg/io.py")) not in listed


def test_code_inputs_are_relative_inside_the_working_directory(tmp_path):
    assert code_inputs.listed_package_dir(PACKAGE_ROOT, REPO) == Path("workflow/txmorph")
    assert code_inputs.listed_package_dir(PACKAGE_ROOT, tmp_path) == PACKAGE_ROOT / "txmorph"


def test_package_goes_first_on_pythonpath():
    environ = {"PYTHONPATH": os.pathsep.join(["/elsewhere", ""])}
    code_inputs.put_package_on_pythonpath("/checkout/workflow", environ)
    assert environ["PYTHONPATH"] == os.pathsep.join(["/checkout/workflow", "/elsewhere"])
    empty = {}
    code_inputs.put_package_on_pythonpath("/checkout/workflow", empty)
    assert empty == {"PYTHONPATH": "/checkout/workflow"}
