# Import: every section's image and spots, in any supported format, become a canonical image
# (memory-mappable TIFF) and spot table (pixels of that image), before any heavy work. Separate
# jobs, so that a changed spot table re-runs only what uses spots (txmorph.io).


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
