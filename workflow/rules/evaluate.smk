# Evaluation (txmorph.evaluate): Dice of each model's arg-max labels against a test section's
# reference regions (rule truth), and the summary: table, figure and Markdown report.


rule dice:
    input:
        truth="results/truth/{section}.tif",
        checks="results/sections/{section}/checks.json",
        classes=LEARNED_CLASSES,
        reference=REFERENCE,
        probmaps=expand(
            "results/probmaps/{{section}}/{model}.h5",
            model=SCORED_MODELS,
        ),
        code=script_code("dice.py"),
    output:
        "results/report/dice/{section}.csv",
    params:
        models=SCORED_MODELS,
        classes=CLASSES,
        context_um=config["probmap"]["context_um"],
        pixel_size_um=lambda wildcards: section_params(wildcards.section)["pixel_size_um"],
    log:
        "results/logs/dice/{section}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/dice.py"


rule summary:
    input:
        dice=expand("results/report/dice/{section}.csv", section=TEST_SECTIONS),
        checks=checks_of(CHECKED_SECTIONS),
        classes=LEARNED_CLASSES,
        # The classes' names (a niche's with its genes).
        reference=REFERENCE,
        # Test sections: truth next to prediction; prediction-only sections: predictions.
        images=expand("results/sections/{section}/image.tif", section=MAPPED_SECTIONS),
        truths=expand("results/truth/{section}.tif", section=TEST_SECTIONS),
        probmaps=expand(
            "results/probmaps/{section}/{model}.h5",
            section=MAPPED_SECTIONS,
            model=SCORED_MODELS,
        ),
        code=script_code("summary.py"),
    output:
        dice=report(
            "results/report/dice.csv",
            caption="../report/dice_table.rst",
            category="4. Evaluation",
            subcategory="Dice",
            labels={"result": "Dice table"},
        ),
        summary="results/report/summary.md",
        figures=[
            report(
                f"results/report/{section}.png",
                caption="../report/summary_figure.rst",
                category="4. Evaluation",
                subcategory="Truth next to prediction" if section in TEST_SECTIONS
                else "Predictions (no spots)",
                labels={"section": section},
            )
            for section in MAPPED_SECTIONS
        ],
    params:
        sections=TEST_SECTIONS,
        predict_sections=PREDICT_SECTIONS,
        models=SCORED_MODELS,
        classes=CLASSES,
        context_um=config["probmap"]["context_um"],
        pixel_sizes_um={s: section_params(s)["pixel_size_um"] for s in MAPPED_SECTIONS},
    log:
        "results/logs/summary/summary.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/summary.py"
