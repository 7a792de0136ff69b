# The embedded demo: two independent synthetic sections generated from seeds. This rule only
# runs when a section's image or spots path points into resources/demo/.


rule demo_data:
    input:
        code=script_code("demo_data.py"),
    output:
        image="resources/demo/{section}/nuclei.tif",
        spots="resources/demo/{section}/spots.csv",
        regions="resources/demo/{section}/regions.tif",
    params:
        seed=lambda wildcards: demo_seed(wildcards.section),
        height=config["demo"]["height"],
        width=config["demo"]["width"],
        pixel_size_um=lambda wildcards: section_config(wildcards.section)["pixel_size_um"],
    log:
        "results/logs/demo_data/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/demo_data.py"


rule demo_truth_check:
    # How well the spot-derived reference regions match the generator's true regions: a check
    # of the truth rule itself, possible only on synthetic data.
    input:
        truth="results/truth/{section}.tif",
        regions="resources/demo/{section}/regions.tif",
        code=script_code("demo_truth_check.py"),
    output:
        "results/report/demo_truth/{section}.csv",
    params:
        classes=CLASSES,
        niches=NICHES,
    log:
        "results/logs/demo_truth_check/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/demo_truth_check.py"
