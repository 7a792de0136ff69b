# Reference regions from each section's own spots (txmorph.truth): on test sections to score the
# models, on training sections where patch centres are drawn.


rule truth:
    input:
        spots="results/sections/{section}/spots.parquet",
        mask="results/masks/{section}.tif",
        checks="results/sections/{section}/checks.json",
        code=script_code("truth.py"),
    output:
        "results/truth/{section}.tif",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        genes=GENES,
        groups=GROUPS,
        sigma_um=config["truth"]["sigma_um"],
        rule=config["truth"]["rule"],
        enrichment=config["truth"]["enrichment"],
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
