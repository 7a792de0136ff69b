# Import and check every section before any heavy work: image and spots in any supported
# format become a canonical image (memory-mappable TIFF) and spot table (pixels of that image).
# Separate jobs, so that a changed spot table re-runs only what uses spots. Then tissue masks.


rule import_image:
    input:
        image=lambda wildcards: section_config(wildcards.section)["image"],
        code=script_code("import_image.py"),
    output:
        image="results/sections/{section}/image.tif",
        summary="results/sections/{section}/image.json",
    params:
        # The image's content: a replaced image re-runs this job whatever its timestamp.
        fingerprint=image_fingerprint,
        section=lambda wildcards: import_params(wildcards.section),
    log:
        "results/logs/import_image/{section}.log",
    threads: 1
    resources:
        # Streams strip by strip: memory is a band of rows, not the image.
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/import_image.py"


rule import_spots:
    input:
        spots=lambda wildcards: section_config(wildcards.section)["spots"],
        side_files=spot_side_files,
        image_info="results/sections/{section}/image.json",
        code=script_code("import_spots.py"),
    output:
        spots="results/sections/{section}/spots.parquet",
        summary="results/sections/{section}/spots.json",
    params:
        # Contents of the spot table and side files: re-run on change, whatever the timestamp.
        fingerprint=spots_fingerprints,
        section=lambda wildcards: import_params(wildcards.section),
        genes=GENES,
    log:
        "results/logs/import_spots/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/import_spots.py"


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
        spot_sigma_um=config["tissue_mask"]["spot_sigma_um"],
        min_relative_density=config["tissue_mask"]["min_relative_density"],
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


rule check_section:
    # Do image, tissue and spots belong together? Errors stop the run before heavy work;
    # warnings and not-evaluable classes go to the log, the JSON and the report.
    input:
        # The DAPI mask: independent of the spots, so it can reveal spots at the wrong scale.
        mask="results/masks/{section}.dapi.tif",
        spots="results/sections/{section}/spots.parquet",
        spots_summary="results/sections/{section}/spots.json",
        code=script_code("check_section.py"),
    output:
        "results/sections/{section}/checks.json",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        role=lambda wildcards: section_config(wildcards.section)["role"],
        groups=GROUPS,
        patch_sizes=PATCH_SIZES,
        sigma_um=config["truth"]["sigma_um"],
        settings=lambda wildcards: check_settings(),
        on_failure=config["checks"]["on_failure"],
        files=lambda wildcards: {
            key: section_config(wildcards.section)[key] for key in ("image", "spots")
        },
    log:
        "results/logs/check_section/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/check_section.py"


rule inputs_checked:
    # The input checks of every section with spots, gathered: rule centres waits for this
    # file (ancient), so a wrong test section stops the run before any patch or model, while
    # adding a section re-runs only this cheap job, not the training (see patches.smk).
    input:
        checks=checks_of(CHECKED_SECTIONS),
        code=script_code("inputs_checked.py"),
    output:
        ALL_CHECKS,
    params:
        sections=CHECKED_SECTIONS,
    log:
        "results/logs/inputs_checked/inputs_checked.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/inputs_checked.py"
