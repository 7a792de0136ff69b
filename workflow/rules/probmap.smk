# Whole-section class-probability maps on the test sections: one per patch size, then their mean.


rule probmap:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        image="results/sections/{section}/image.tif",
        model="results/models/size{size}.pt",
        code=script_code("probmap.py"),
    output:
        "results/probmaps/{section}/size{size}.h5",
    params:
        tile_size=config["probmap"]["tile_size"],
        device=config["probmap"]["device"],
        output_stride=config["probmap"]["output_stride"],
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


rule ensemble:
    input:
        maps=expand("results/probmaps/{{section}}/size{size}.h5", size=PATCH_SIZES),
        code=script_code("ensemble.py"),
    output:
        "results/probmaps/{section}/ensemble.h5",
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


rule export_ometiff:
    # Optional target, not part of `all`: `snakemake --cores 2 export_all_ometiff`.
    input:
        probmap="results/probmaps/{section}/{model}.h5",
        code=script_code("export_ometiff.py"),
    output:
        "results/export/{section}/{model}.ome.tif",
    params:
        pixel_size_um=lambda wildcards: section_params(wildcards.section)["pixel_size_um"],
    wildcard_constraints:
        model="|".join(MODELS),
    log:
        "results/logs/export_ometiff/{section}_{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/export_ometiff.py"


rule export_all_ometiff:
    input:
        expand("results/export/{section}/{model}.ome.tif", section=MAPPED_SECTIONS, model=MODELS),
