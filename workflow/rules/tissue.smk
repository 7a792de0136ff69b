# Tissue masks: from the DAPI image, then (sections with spots) from where the transcripts are:
# background is a transcript-free gap of tissue_mask.gap_um, the same rule in every section
# (txmorph.tissue).


rule dapi_mask:
    input:
        image="results/sections/{section}/image.tif",
        code=script_code("dapi_mask.py"),
    output:
        "results/masks/{section}.dapi.tif",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        smoothing_um=config["tissue_mask"]["smoothing_um"],
        min_area_um2=config["tissue_mask"]["min_area_um2"],
    log:
        "results/logs/dapi_mask/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/dapi_mask.py"



rule tissue_mask:
    input:
        dapi="results/masks/{section}.dapi.tif",
        spots=lambda wildcards: tissue_spots_input(wildcards.section),
        code=script_code("tissue_mask.py"),
    output:
        "results/masks/{section}.tif",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        source=config["tissue_mask"]["source"],
        gap_um=config["tissue_mask"]["gap_um"],
        min_area_um2=config["tissue_mask"]["min_area_um2"],
    log:
        "results/logs/tissue_mask/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/tissue_mask.py"
