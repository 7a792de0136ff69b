# Input checks before any heavy work, then the tissue mask of every section. Image and spots
# are checked by separate jobs so that a changed spot table re-runs only what uses spots.


rule validate_image:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        code=package_code("inputs"),
    output:
        "results/validated/{section}.image.json",
    params:
        section=lambda wildcards: section_params(wildcards.section),
    log:
        "results/logs/validate_image/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/validate_image.py"


rule validate_spots:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        spots=lambda wildcards: section_config(wildcards.section)["spots"],
        code=package_code("inputs", "section"),
    output:
        "results/validated/{section}.spots.json",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        genes=GENES,
    log:
        "results/logs/validate_spots/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/validate_spots.py"


rule tissue_mask:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        validated="results/validated/{section}.image.json",
        code=package_code("inputs", "tissue"),
    output:
        "results/masks/{section}.tif",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        smoothing_um=config["tissue_mask"]["smoothing_um"],
        min_area_um2=config["tissue_mask"]["min_area_um2"],
    log:
        "results/logs/tissue_mask/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/tissue_mask.py"
