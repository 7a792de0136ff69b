# Reused models (txmorph.reuse): with `models:` in the config, the trained models of another
# run are copied in instead of training here, and what they learned stands in for classes.json.


if REUSED_MODELS:
    # The reused models are copied byte for byte into results/models/: probmap reads them
    # there as if trained here (same maps), and this run's results/models can be reused in
    # turn. Preferred over train/baseline_train, which no target then asks for.
    ruleorder: reuse_model > train
    ruleorder: reuse_baseline > baseline_train
    ruleorder: reuse_reference > reference

    rule reuse_model:
        input:
            lambda wildcards: str(MODEL_SET.files[int(wildcards.size)]),
        output:
            "results/models/size{size}.pt",
        log:
            "results/logs/reuse_model/size{size}.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/data.yaml"
        shell:
            "cp {input:q} {output:q} 2> {log:q}"

    rule reuse_baseline:
        input:
            lambda wildcards: str(MODEL_SET.baseline),
        output:
            f"results/models/{BASELINE}.npz",
        log:
            "results/logs/reuse_baseline/baseline.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/data.yaml"
        shell:
            "cp {input:q} {output:q} 2> {log:q}"

    rule reuse_reference:
        # The class definitions the reused models were trained on: this run's sections get
        # their reference regions by the same thresholds.
        input:
            lambda wildcards: str(MODEL_SET.reference),
        output:
            REFERENCE,
        log:
            "results/logs/reuse_reference/reference.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/data.yaml"
        shell:
            "cp {input:q} {output:q} 2> {log:q}"

    rule reuse_ensemble_weights:
        # probmap.ensemble weighted | best: the weights fitted where the models were trained.
        input:
            str(Path(REUSED_MODELS) / "ensemble.json"),
        output:
            ENSEMBLE_WEIGHTS,
        log:
            "results/logs/reuse_ensemble_weights/ensemble.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/data.yaml"
        shell:
            "cp {input:q} {output:q} 2> {log:q}"

    ruleorder: reuse_ensemble_weights > ensemble_weights

    rule reused_classes:
        # What the reused models learned, in the form of rule centres' classes.json, for the
        # Dice and summary rules.
        input:
            models=expand("results/models/size{size}.pt", size=PATCH_SIZES),
            code=script_code("reused_classes.py"),
        output:
            LEARNED_CLASSES,
        params:
            classes=CLASSES,
            models_dir=str(REUSED_MODELS),
        log:
            "results/logs/reused_classes/classes.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        conda:
            "../../envs/data.yaml"
        script:
            "../scripts/reused_classes.py"
