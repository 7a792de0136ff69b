# `niches: K` (txmorph.niches): the classes are K expression niches of all genes' spots, found
# by one clustering over the train and test sections together (so a niche means the same in
# each). Each section's spots with their niche in the gene column replace its spot table for
# the reference, truth and centres rules (common.smk's class_spots).

# The sections clustered together: every section with spots (prediction-only sections have
# none and get the learnt classes' maps only).
NICHE_SECTIONS = TRAIN_SECTIONS + TEST_SECTIONS
NICHE_SUMMARY = "results/niches/niches.json"


rule niches:
    input:
        spots=expand("results/sections/{section}/spots.parquet", section=NICHE_SECTIONS),
        masks=expand("results/masks/{section}.tif", section=NICHE_SECTIONS),
        # Every section's input checks pass before the clustering.
        checks=checks_of(NICHE_SECTIONS),
        code=script_code("niches.py"),
    output:
        summary=NICHE_SUMMARY,
        spots=expand("results/niches/{section}.parquet", section=NICHE_SECTIONS),
        table=report(
            "results/report/niches.csv",
            caption="../report/niches.rst",
            category="0. Inputs",
            labels={"result": "expression niches"},
        ),
    params:
        sections=[section_params(s) for s in NICHE_SECTIONS],
        roles=[section_config(s)["role"] for s in NICHE_SECTIONS],
        k=NICHES,
        sigma_um=config["truth"]["sigma_um"],
        min_spots_per_region=config["truth"]["min_spots_per_region"],
        min_per_class=config["patches"]["min_per_class"],
        seed=config["seed"],
    log:
        "results/logs/niches/niches.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/niches.py"
