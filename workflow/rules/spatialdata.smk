# SpatialData in and out (txmorph.io.spatialdata in, txmorph.export.spatialdata out; envs/spatialdata.yaml, pip extra `spatialdata`).
# In: a section whose image (and spots) is a SpatialData .zarr is imported by the two rules
# below instead of import_image/import_spots, into the same canonical image and spot table, so
# every later rule is unchanged. Out: one .zarr per painted section (export_spatialdata).
# The core rules never import spatialdata: a run of TIFF/CSV sections without the export
# needs none of this file's env.
include: "spatialdata_common.smk"


# Both import routes write results/sections/{section}/...: .zarr sections take these rules.
ruleorder: import_spatialdata_image > import_image
ruleorder: import_spatialdata_points > import_spots


rule import_spatialdata_image:
    input:
        element=lambda wildcards: spatialdata_element_path(wildcards.section, "images"),
        code=script_code("import_spatialdata_image.py"),
    output:
        image="results/sections/{section}/image.tif",
        summary="results/sections/{section}/image.json",
    params:
        # The element's content: a replaced image re-runs this job whatever its timestamp.
        fingerprint=lambda wildcards: spatialdata_fingerprint(wildcards.section, "images"),
        section=lambda wildcards: import_params(wildcards.section),
        store=lambda wildcards: section_config(wildcards.section)["image"],
        element=lambda wildcards: SPATIALDATA_ELEMENTS[wildcards.section]["images"],
    wildcard_constraints:
        section=_alternation(SPATIALDATA_IMAGE_SECTIONS),
    log:
        "results/logs/import_spatialdata_image/{section}.log",
    threads: 1
    resources:
        # Streams strip by strip from the store's chunks, like import_image.
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/spatialdata.yaml"
    script:
        "../scripts/import_spatialdata_image.py"


rule import_spatialdata_points:
    input:
        element=lambda wildcards: spatialdata_element_path(wildcards.section, "points"),
        image_element=lambda wildcards: spatialdata_element_path(wildcards.section, "images"),
        image_info="results/sections/{section}/image.json",
        code=script_code("import_spatialdata_points.py"),
    output:
        spots="results/sections/{section}/spots.parquet",
        summary="results/sections/{section}/spots.json",
    params:
        fingerprint=lambda wildcards: {
            kind: spatialdata_fingerprint(wildcards.section, kind) for kind in ("points", "images")
        },
        section=lambda wildcards: {**import_params(wildcards.section), "spots_format": "spatialdata"},
        genes=GENES,
        store=lambda wildcards: section_config(wildcards.section)["spots"],
        points_element=lambda wildcards: SPATIALDATA_ELEMENTS[wildcards.section]["points"],
        image_store=lambda wildcards: section_config(wildcards.section)["image"],
        image_element=lambda wildcards: SPATIALDATA_ELEMENTS[wildcards.section]["images"],
        coordinate_system=lambda wildcards: section_config(wildcards.section).get("coordinate_system"),
    wildcard_constraints:
        section=_alternation(SPATIALDATA_POINTS_SECTIONS),
    log:
        "results/logs/import_spatialdata_points/{section}.log",
    threads: 1
    resources:
        # The points are read whole, like a spot table.
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/spatialdata.yaml"
    script:
        "../scripts/import_spatialdata_points.py"


rule export_spatialdata:
    # Default target only with `export: {spatialdata: true}`; else `snakemake export_all_spatialdata`.
    input:
        unpack(spatialdata_scores),
        image="results/sections/{section}/image.tif",
        probmaps=expand("results/probmaps/{{section}}/{model}.h5", model=MODELS),
        labels="results/labels/{section}.tif",
        # The classes' names (a niche's with its genes) for the store's attributes.
        reference=REFERENCE,
        code=script_code("export_spatialdata.py"),
    output:
        directory("results/spatialdata/{section}.zarr"),
    params:
        models=MODELS,
        classes=CLASSES,
        pixel_size_um=lambda wildcards: section_params(wildcards.section)["pixel_size_um"],
    log:
        "results/logs/export_spatialdata/{section}.log",
    threads: 1
    resources:
        # The maps and labels in memory (small: stride >= 4 in both directions); the image
        # goes through chunk by chunk.
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/spatialdata.yaml"
    script:
        "../scripts/export_spatialdata.py"


rule export_all_spatialdata:
    input:
        expand("results/spatialdata/{section}.zarr", section=SPATIALDATA_EXPORT_SECTIONS),
