# Optional target, not part of `all`: which genes or marker sets to put in `genes` for a new
# dataset, checked against this config's settings and ranked by a DAPI hold-out probe.
#   snakemake --cores 2 gene_candidates
# (then paste results/report/gene_candidates.yaml into the config).


# Sections with spots (train and test): prediction-only sections have none to choose from.
GENE_CHOICE_SECTIONS = [name for name in SECTIONS if section_config(name)["role"] != "predict"]


rule gene_candidates:
    input:
        images=expand("results/sections/{section}/image.tif", section=GENE_CHOICE_SECTIONS),
        image_info=expand("results/sections/{section}/image.json", section=GENE_CHOICE_SECTIONS),
        # DAPI masks: the tissue of the input checks (evaluable test genes); the spot-based
        # tissue is made in the rule from the canonical spots, which hold every gene of the
        # table (import_spots checks that the configured `genes` are present, filters none).
        masks=expand("results/masks/{section}.dapi.tif", section=GENE_CHOICE_SECTIONS),
        spots=expand("results/sections/{section}/spots.parquet", section=GENE_CHOICE_SECTIONS),
        code=script_code("gene_candidates.py"),
    output:
        table="results/report/gene_candidates.csv",
        snippet="results/report/gene_candidates.yaml",
        figure=report(
            "results/report/gene_candidates.png",
            category="0. Inputs",
            caption="../report/gene_candidates.rst",
        ),
    params:
        sections=[section_params(s) for s in GENE_CHOICE_SECTIONS],
        roles=[section_config(s)["role"] for s in GENE_CHOICE_SECTIONS],
        tissue=config["tissue_mask"],
        # What the choice must agree with (txmorph.genes.choice.Settings): the reference rule,
        # the input checks, the patch sampler and the baseline that the probe uses.
        settings={
            "quantity": config["truth"]["quantity"],
            "sigma_um": config["truth"]["sigma_um"],
            "rule": config["truth"]["rule"],
            "enrichment": config["truth"]["enrichment"],
            "min_spots_per_region": config["truth"]["min_spots_per_region"],
            "labels": config["patches"]["labels"],
            "per_class": config["patches"]["per_class"],
            "min_per_class": config["patches"]["min_per_class"],
            "seed": config["seed"],
            "windows": baseline_windows(),
            "nucleus_diameter_um": BASELINE_NUCLEUS_UM,
            "probe_stride": native_stride(PATCH_SIZES[0]),
        },
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
