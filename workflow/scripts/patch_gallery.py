"""Rule patch_gallery: example patches per class of one patch size, with the counts."""

from txmorph.patches.patchdata import read_patch_set
from txmorph.report import patch_gallery
from txmorph.scripting import run_rule


def main(smk, log):
    patches = read_patch_set(smk.input.patches)
    title = f"patch size {patches.patch_size} px: {len(patches.labels)} patches"
    patch_gallery(patches.images, patches.labels, patches.classes, smk.output[0],
                  per_class=smk.params.per_class, seed=smk.params.seed, title=title)
    log.info("%s", title)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
