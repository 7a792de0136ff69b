# Input checks per section (txmorph.checks), before patches or training: findings in the log and
# the report; errors stop the run, not-evaluable classes are left out of the Dice.


rule check_section:
    # Do image, tissue and spots belong together? Errors stop the run before heavy work;
    # warnings and not-evaluable classes go to the log, the JSON and the report.
    input:
        # The DAPI mask: independent of the spots, so it can reveal spots at the wrong scale.
        mask="results/masks/{section}.dapi.tif",
        # Its grey levels on that tissue: a saturated or too dark image hides nuclear texture.
        image="results/sections/{section}/image.tif",
        spots="results/sections/{section}/spots.parquet",
        spots_summary="results/sections/{section}/spots.json",
        code=script_code("check_section.py"),
    output:
        "results/sections/{section}/checks.json",
    params:
        section=lambda wildcards: section_params(wildcards.section),
        role=lambda wildcards: section_config(wildcards.section)["role"],
        # Niches are found after the checks (rule niches), which check them themselves.
        groups={} if NICHES else GROUPS,
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
