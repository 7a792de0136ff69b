# Figures and tables for the Snakemake HTML report: `snakemake --report report.html`.
# The overview page is workflow/report/workflow.rst (the `report:` directive below); each
# result marked with report() gets its caption from workflow/report/<name>.rst.


report: "../report/workflow.rst"


from txmorph.classes import REFERENCE_DICE


rule patch_gallery:
    input:
        patches="results/patches/size{size}.h5",
        code=script_code("patch_gallery.py"),
    output:
        report(
            "results/report/patches/size{size}.png",
            caption="../report/patch_gallery.rst",
            category="1. Training patches",
            subcategory="Examples per class",
            labels={"patch size": "{size} px"},
        ),
    params:
        per_class=8,
        seed=config["seed"],
    log:
        "results/logs/patch_gallery/size{size}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/patch_gallery.py"


rule patch_counts:
    input:
        patches=expand("results/patches/size{size}.h5", size=PATCH_SIZES),
        code=script_code("patch_counts.py"),
    output:
        report(
            "results/report/patch_counts.csv",
            caption="../report/patch_counts.rst",
            category="1. Training patches",
            subcategory="Counts",
            labels={"table": "patches per class and size"},
        ),
    params:
        sizes=PATCH_SIZES,
    log:
        "results/logs/patch_counts/patch_counts.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/patch_counts.py"


rule training_curves:
    input:
        metrics=expand("results/models/size{size}.metrics.csv", size=PATCH_SIZES),
        code=script_code("training_curves.py"),
    output:
        report(
            "results/report/training_curves.png",
            caption="../report/training_curves.rst",
            category="2. Training",
            labels={"figure": "loss and accuracy per epoch"},
        ),
    params:
        sizes=PATCH_SIZES,
    log:
        "results/logs/training_curves/training_curves.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/training_curves.py"


rule probmap_figure:
    input:
        image="results/sections/{section}/image.tif",
        probmap="results/probmaps/{section}/{model}.h5",
        code=script_code("probmap_figure.py"),
    output:
        report(
            "results/report/probmaps/{section}/{model}.png",
            caption="../report/probmap_figure.rst",
            category="3. Probability maps",
            subcategory="section {section}",
            labels={"section": "{section}", "model": "{model}"},
        ),
    wildcard_constraints:
        model="|".join(MODELS),
    log:
        "results/logs/probmap_figure/{section}_{model}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/probmap_figure.py"


rule dice_chart:
    input:
        dice="results/report/dice.csv",
        code=script_code("dice_chart.py"),
    output:
        report(
            "results/report/dice_chart.png",
            caption="../report/dice_chart.rst",
            category="4. Evaluation",
            subcategory="Dice",
            labels={"result": "Dice chart"},
        ),
    params:
        reference=REFERENCE_DICE,
    log:
        "results/logs/dice_chart/dice_chart.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/dice_chart.py"
