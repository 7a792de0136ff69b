# Helpers of workflow/rules/spatialdata.smk: which sections are SpatialData stores, their
# elements (checked while the workflow is parsed) and inputs of its rules; its targets are
# txmorph.pipeline.targets.spatialdata_outputs (also a target of rule all, common.smk).
import re
from pathlib import Path

from txmorph.errors import InputError
from txmorph.pipeline.targets import spatialdata_export_sections
from txmorph.io.spatialdata import check_store_elements, is_spatialdata_store


def _alternation(names):
    """A wildcard constraint matching exactly these names (never matching when empty)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


SPATIALDATA_IMAGE_SECTIONS = [
    name for name in SECTIONS if is_spatialdata_store(section_config(name).get("image"))
]
SPATIALDATA_POINTS_SECTIONS = [
    name for name in SECTIONS if is_spatialdata_store(section_config(name).get("spots"))
]
# Sections with probability maps (not the training ones): one SpatialData store each.
SPATIALDATA_EXPORT_SECTIONS = spatialdata_export_sections(config)


def check_spatialdata_sections():
    """Element names and settings of .zarr sections, checked from the stores' layout while the
    workflow is parsed: a wrong name stops the run before any job, without spatialdata."""
    elements, problems = {}, []
    for name in SPATIALDATA_IMAGE_SECTIONS + SPATIALDATA_POINTS_SECTIONS:
        section = section_config(name)
        if name in SPATIALDATA_POINTS_SECTIONS and name not in SPATIALDATA_IMAGE_SECTIONS:
            problems.append(
                f"section '{name}': spots come from the SpatialData store {section['spots']}, so "
                "the image must be an image element of a SpatialData store too (the points are "
                "placed on it through their coordinate systems); set 'image' to that store")
            continue
        if not section.get("pixel_size_um"):
            problems.append(
                f"section '{name}': set 'pixel_size_um' (µm per pixel of the image element at "
                "'level'): a SpatialData store records no physical unit")
        try:
            found = check_store_elements(name, section["image"],
                                         {"images": section.get("image_element")})
            if name in SPATIALDATA_POINTS_SECTIONS:
                found |= check_store_elements(name, section["spots"],
                                              {"points": section.get("points_element")})
        except InputError as error:
            problems.append(str(error))
            continue
        elements[name] = found
    if problems:
        raise WorkflowError(f"Input error in {CONFIG_FILES}:\n  - " + "\n  - ".join(problems))
    return elements


# {section: {"images": element, "points": element}} of every .zarr section.
SPATIALDATA_ELEMENTS = check_spatialdata_sections()


def spatialdata_element_path(name, kind):
    """The element's folder in its store: the rule's input (and what its fingerprint covers)."""
    store = section_config(name)["image" if kind == "images" else "spots"]
    return str(Path(store) / kind / SPATIALDATA_ELEMENTS[name][kind])


def spatialdata_fingerprint(name, kind):
    """The content of one element (not of the whole store): new points re-run only the spots."""
    from txmorph.io.fingerprint import cached_fingerprint

    return cached_fingerprint(spatialdata_element_path(name, kind))


def spatialdata_scores(wildcards):
    """Reference regions and Dice of a test section; other sections have none."""
    if section_config(wildcards.section)["role"] != "test":
        return {}
    return {"truth": f"results/truth/{wildcards.section}.tif",
            "dice": f"results/report/dice/{wildcards.section}.csv"}
