# txmorph: transcriptome-supervised classification of tissue morphology.
# Run: snakemake --cores N   (see README.md; edit config.yaml to use your own data)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, schema="workflow/schemas/config.schema.yaml")


# The image built from ./Dockerfile (`snakemake --containerize > Dockerfile`); used with
# `--sdm apptainer` (or `--sdm conda apptainer`). See README.md, "Reproducibility".
containerized: config["container"]


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/patches.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/probmap.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/genes.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
