# Class-balanced training patches per patch size, from every training section.


rule patches:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        images=expand("results/sections/{section}/image.tif", section=TRAIN_SECTIONS),
        spots=expand("results/sections/{section}/spots.parquet", section=TRAIN_SECTIONS),
        masks=expand("results/masks/{section}.tif", section=TRAIN_SECTIONS),
        # Not read: the input checks of every training section must pass first.
        checks=checks_of(TRAIN_SECTIONS),
        code=script_code("patches.py"),
    output:
        "results/patches/size{size}.h5",
    params:
        size=lambda wildcards: int(wildcards.size),
        sections=[section_params(s) for s in TRAIN_SECTIONS],
        genes=GENES,
        per_class=config["patches"]["per_class"],
        min_per_class=config["patches"]["min_per_class"],
        tissue_exclusion_um=config["patches"]["tissue_exclusion_um"],
        seed=config["seed"],
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
