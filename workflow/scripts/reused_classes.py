"""Rule reused_classes: what the reused models (config `models`) learned, in the form of
rule centres' classes.json, from the metadata of the copied model files."""

import json

from txmorph.outputs import atomic_path
from txmorph.reuse import learned_classes_summary, read_checkpoint_metadata
from txmorph.scripting import run_rule


def main(smk, log):
    metadata = read_checkpoint_metadata(smk.input.models[0])["metadata"]
    summary = learned_classes_summary(smk.params.classes, metadata, smk.params.models_dir)
    log.info("reused models from %s learned %s; left out: %s", smk.params.models_dir,
             summary["classes"], summary["dropped"] or "none")
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
