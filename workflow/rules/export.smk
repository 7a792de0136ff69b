# Exports of the probability maps for image viewers (txmorph.export): pyramidal OME-TIFF.


rule export_ometiff:
    # Optional target, not part of `all`: `snakemake --cores 2 export_all_ometiff`.
    input:
        probmap="results/probmaps/{section}/{model}.h5",
        # The classes' names as channel names (a niche's with its genes).
        reference=REFERENCE,
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
