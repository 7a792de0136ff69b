# Whole-section class-probability maps (txmorph.probmap) on the mapped sections (test and
# predict): one per patch size, their mean (the ensemble), and its arg-max label image.


rule probmap:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        image="results/sections/{section}/image.tif",
        model="results/models/size{size}.pt",
        # probmap.adapt_batchnorm: the section's own DAPI tissue (no spots) to adapt to.
        dapi_mask=lambda wildcards: (f"results/masks/{wildcards.section}.dapi.tif"
                                     if config["probmap"]["adapt_batchnorm"] else []),
        code=script_code("probmap.py"),
    output:
        "results/probmaps/{section}/size{size}.h5",
    params:
        adapt_batchnorm=config["probmap"]["adapt_batchnorm"],
        # The patches adapted to (none without adaptation: the seed does not touch the map).
        seed=lambda wildcards: probmap_seed(wildcards.section, wildcards.size),
        tile_size=config["probmap"]["tile_size"],
        device=config["probmap"]["device"],
        output_stride=config["probmap"]["output_stride"],
        tta=config["probmap"]["tta"],
    log:
        "results/logs/probmap/{section}_size{size}.log",
    threads: config["probmap"]["threads"]
    resources:
        mem_mb=probmap_mem_mb,
        runtime=60,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/probmap.py"


rule ensemble_weights:
    # probmap.ensemble weighted | best: fitted on the spots every size held out for
    # validation in the training sections (txmorph.train.ensemble); never on a test section.
    input:
        patches=expand("results/patches/size{size}.h5", size=PATCH_SIZES),
        models=expand("results/models/size{size}.pt", size=PATCH_SIZES),
        code=script_code("ensemble_weights.py"),
    output:
        ENSEMBLE_WEIGHTS,
    params:
        sizes=PATCH_SIZES,
        method=config["probmap"]["ensemble"],
    log:
        "results/logs/ensemble_weights/ensemble_weights.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/ensemble_weights.py"


rule ensemble:
    input:
        maps=expand("results/probmaps/{{section}}/size{size}.h5", size=PATCH_SIZES),
        weights=ENSEMBLE_WEIGHTS if config["probmap"]["ensemble"] != "mean" else [],
        code=script_code("ensemble.py"),
    output:
        "results/probmaps/{section}/ensemble.h5",
    params:
        sizes=PATCH_SIZES,
    log:
        "results/logs/ensemble/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/ensemble.py"


rule argmax_labels:
    input:
        probmap="results/probmaps/{section}/ensemble.h5",
        code=script_code("argmax_labels.py"),
    output:
        "results/labels/{section}.tif",
    params:
        model="ensemble",
        classes=CLASSES,
        context_um=config["probmap"]["context_um"],
        pixel_size_um=lambda wildcards: section_params(wildcards.section)["pixel_size_um"],
    log:
        "results/logs/argmax_labels/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/argmax_labels.py"
