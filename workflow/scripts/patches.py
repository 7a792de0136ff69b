"""Rule patches: class-balanced patches of one size from every training section."""

import numpy as np
import tifffile

from txmorph.intensity import intensity_range
from txmorph.patchdata import PatchSet, concatenate, write_patch_set
from txmorph.sampling import class_names, extract_patches, sample_centres
from txmorph.scripting import run_rule
from txmorph.section import load_section


def main(smk, log):
    size = smk.params.size
    genes = smk.params.genes
    parts = []
    for index, params in enumerate(smk.params.sections):
        section = load_section(smk.input.images[index], smk.input.spots[index], params, genes)
        mask = tifffile.imread(smk.input.masks[index]).astype(bool)
        # The seed does not depend on the patch size: every size sees the same centres.
        rng = np.random.default_rng([smk.params.seed, index])
        sampled = sample_centres(
            section.spots,
            mask,
            genes,
            per_class=smk.params.per_class,
            exclusion_radius_px=smk.params.tissue_exclusion_um / section.pixel_size_um,
            rng=rng,
            min_per_class=smk.params.min_per_class,
            source=f"training section '{section.name}'",
        )
        log.info(
            "section %s: candidates per class %s; %d patches of %d px",
            section.name, sampled.available, len(sampled.labels), size,
        )
        parts.append(
            PatchSet(
                images=extract_patches(section.image, sampled.centres, size),
                labels=sampled.labels,
                centres=sampled.centres,
                section=np.zeros(len(sampled.labels), dtype=np.int64),
                classes=class_names(genes),
                sections=[section.name],
                section_intensity=np.array([intensity_range(section.image)]),
                pixel_size=np.array([section.pixel_size_um]),
                patch_size=size,
                config={key: value for key, value in smk.params.items()},
            )
        )
    patches = concatenate(parts)
    counts = np.bincount(patches.labels, minlength=len(patches.classes))
    log.info("patches per class: %s", dict(zip(patches.classes, counts.tolist())))
    write_patch_set(smk.output[0], patches)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
