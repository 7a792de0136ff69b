"""Rule train: one CNN for one patch size."""

import pandas as pd

from txmorph.device import resolve_device
from txmorph.outputs import atomic_path
from txmorph.patches.patchdata import read_patch_set
from txmorph.scripting import run_rule
from txmorph.train.model import save_model
from txmorph.train.pretrain import load_encoder
from txmorph.train.training import TrainingParams, train_classifier


def main(smk, log):
    patches = read_patch_set(smk.input.patches)
    params = TrainingParams(**smk.params.training, seed=smk.params.seed)
    device = resolve_device(smk.params.device)
    encoder = load_encoder(smk.input.encoder) if smk.input.encoder else None
    log.info(
        "training size %d on %d patches (%s), device %s, %d threads",
        patches.patch_size, len(patches.labels), params, device, smk.params.threads,
    )
    model, metrics, metadata = train_classifier(
        patches.images,
        patches.labels,
        patches.section,
        {i: tuple(r) for i, r in enumerate(patches.section_intensity)},
        patches.classes,
        patches.patch_size,
        params,
        network_input=smk.params.network_input,
        device=device,
        threads=smk.params.threads,
        log=log.info,
        centres=patches.centres,
        largest_patch_size=smk.params.largest_patch_size,
        encoder=encoder,
        freeze_encoder=smk.params.freeze_encoder,
    )
    metadata["config"] = {
        "training": dict(smk.params.training),
        "seed": smk.params.seed,
        "patches": patches.config,
    }
    if encoder is not None:
        metadata["pretrain"] = encoder.info
    save_model(smk.output.model, model, metadata)
    with atomic_path(smk.output.metrics) as tmp:
        pd.DataFrame(metrics).to_csv(tmp, index=False)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
