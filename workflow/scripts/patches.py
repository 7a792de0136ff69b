"""Rule patches: the training patches of one size, cut at the centres of rule centres."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from txmorph.io.canonical import read_image
from txmorph.patches.intensity import intensity_range
from txmorph.patches.patchdata import PatchSet, concatenate, write_patch_set
from txmorph.patches.sampling import extract_patches
from txmorph.scripting import run_rule


def main(smk, log):
    size = smk.params.size
    centres = pd.read_parquet(smk.input.centres)
    classes = json.loads(Path(smk.input.classes).read_text())["classes"]
    parts = []
    for index, params in enumerate(smk.params.sections):
        image = read_image(smk.input.images[index])
        mine = centres[centres["section"] == index]
        points = mine[["row", "col"]].to_numpy(np.int64)
        log.info("section %s: %d patches of %d px", params["name"], len(points), size)
        parts.append(
            PatchSet(
                images=extract_patches(image, points, size),
                labels=mine["label"].to_numpy(np.int64),
                centres=points,
                section=np.zeros(len(points), dtype=np.int64),
                classes=list(classes),
                sections=[params["name"]],
                section_intensity=np.array([intensity_range(image)]),
                pixel_size=np.array([params["pixel_size_um"]]),
                patch_size=size,
                config={key: value for key, value in smk.params.items()},
            )
        )
    patches = concatenate(parts)
    counts = np.bincount(patches.labels, minlength=len(patches.classes))
    log.info("patches per class: %s", dict(zip(patches.classes, counts.tolist())))
    write_patch_set(smk.output[0], patches)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
