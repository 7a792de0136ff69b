"""Rule pretrain: one self-supervised encoder from the DAPI of every section (no labels)."""

from txmorph.device import resolve_device
from txmorph.io.canonical import MappedImage, read_mask
from txmorph.patches.intensity import intensity_range
from txmorph.scripting import run_rule
from txmorph.train.augment import Augmentation
from txmorph.train.pretrain import (PretrainParams, UnlabelledSection, pretrain_encoder,
                                    save_encoder)


def main(smk, log):
    sections = []
    for image_path, mask_path in zip(smk.input.images, smk.input.dapi_masks):
        image = MappedImage(image_path)
        sections.append(UnlabelledSection(image, read_mask(mask_path), *intensity_range(image)))
    encoder = pretrain_encoder(
        sections, smk.params.sizes, smk.params.network_input, tuple(smk.params.widths),
        PretrainParams(**smk.params.pretrain), Augmentation(**smk.params.augment),
        smk.params.seed, threads=smk.threads, device=resolve_device(smk.params.device),
        log=log.info,
    )
    save_encoder(smk.output[0], encoder)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
