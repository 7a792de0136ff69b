# Patch centres and the class set (once), then the training patches of each size.


rule centres:
    input:
        truths=expand("results/truth/{section}.tif", section=TRAIN_SECTIONS),
        spots=[class_spots(section) for section in TRAIN_SECTIONS],
        # Not read: the input checks of every section, test sections included, must pass
        # before any patch is cut or model trained (no heavy work on inputs that are wrong).
        checks=checks_of(TRAIN_SECTIONS),
        # The test sections' checks through one file (rule inputs_checked) that only orders
        # the jobs: ancient, so editing a test section's spots re-checks and re-scores it
        # without retraining; and one fixed path, so adding a test section leaves the set of
        # this job's inputs (a rerun trigger) unchanged.
        all_checked=ancient(ALL_CHECKS),
        code=script_code("centres.py"),
    output:
        centres="results/patches/centres.parquet",
        classes="results/patches/classes.json",
    params:
        sections=[section_params(s) for s in TRAIN_SECTIONS],
        groups=GROUPS,
        niches=NICHES,
        labels=config["patches"]["labels"],
        per_class=config["patches"]["per_class"],
        min_per_class=config["patches"]["min_per_class"],
        # Sections of blocks: centres this far from the pixels not the section's.
        buffer_px=max(PATCH_SIZES),
        seed=config["seed"],
    log:
        "results/logs/centres/centres.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/centres.py"


rule patches:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        images=expand("results/sections/{section}/image.tif", section=TRAIN_SECTIONS),
        centres="results/patches/centres.parquet",
        classes="results/patches/classes.json",
        code=script_code("patches.py"),
    output:
        "results/patches/size{size}.h5",
    params:
        size=lambda wildcards: int(wildcards.size),
        sections=[section_params(s) for s in TRAIN_SECTIONS],
    log:
        "results/logs/patches/size{size}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/patches.py"
