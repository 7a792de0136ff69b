# Optional target, not part of `all`: which genes to put in `genes` for a new dataset.
#   snakemake --cores 2 gene_candidates


rule gene_candidates:
    input:
        images=expand("results/sections/{section}/image.tif", section=SECTIONS),
        image_info=expand("results/sections/{section}/image.json", section=SECTIONS),
        # DAPI masks: the spot-based tissue is made in the rule from the raw tables, since
        # the imported spots are checked against `genes`, which this rule helps to choose.
        masks=expand("results/masks/{section}.dapi.tif", section=SECTIONS),
        spots=[section_config(s)["spots"] for s in SECTIONS],
        side_files=[f for s in SECTIONS for f in side_files_of(s)],
        code=script_code("gene_candidates.py"),
    output:
        table="results/report/gene_candidates.csv",
        figure=report(
            "results/report/gene_candidates.png",
            category="0. Inputs",
            caption="../report/gene_candidates.rst",
        ),
    params:
        sections=[import_params(s) for s in SECTIONS],
        sigma_um=config["truth"]["sigma_um"],
        tissue=config["tissue_mask"],
        rule=config["truth"]["rule"],
        enrichment=config["truth"]["enrichment"],
        # Enough spots for the patch sampler's minimum per class, twice over.
        min_spots=max(100, 2 * config["patches"]["min_per_class"]),
    log:
        "results/logs/gene_candidates/all.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/gene_candidates.py"
