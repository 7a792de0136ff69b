# Reference regions from the spots (txmorph.truth): one definition per class, fitted once on the
# pooled training sections (rule reference, kept with the models), then applied unchanged to
# every section: on test sections to score the models, on training sections where patch
# centres are drawn.


rule reference:
    input:
        spots=[class_spots(section) for section in TRAIN_SECTIONS],
        masks=expand("results/masks/{section}.tif", section=TRAIN_SECTIONS),
        checks=checks_of(TRAIN_SECTIONS),
        # niches: K: the niches' names and genes, kept with the class definitions.
        niches=[NICHE_SUMMARY] if NICHES else [],
        code=script_code("reference.py"),
    output:
        REFERENCE,
    params:
        sections=[section_params(s) for s in TRAIN_SECTIONS],
        groups=GROUPS,
        niches=NICHES,
        settings=truth_settings(),
        min_spots_per_region=config["truth"]["min_spots_per_region"],
    log:
        "results/logs/reference/reference.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/reference.py"


rule truth:
    input:
        spots=lambda wildcards: class_spots(wildcards.section),
        mask="results/masks/{section}.tif",
        checks="results/sections/{section}/checks.json",
        reference=REFERENCE,
        code=script_code("truth.py"),
    output:
        "results/truth/{section}.tif",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        groups=GROUPS,
        niches=NICHES,
    log:
        "results/logs/truth/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/truth.py"
