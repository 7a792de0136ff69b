# Input checks before any heavy work, then the tissue mask of every section.


rule validate_section:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        spots=lambda wildcards: section_config(wildcards.section)["spots"],
    output:
        "results/validated/{section}.json",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        genes=GENES,
    log:
        "results/logs/validate_section/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/validate_section.py"


rule tissue_mask:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        validated="results/validated/{section}.json",
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
