# One CNN per patch size, trained on that size's patches.


rule train:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        patches="results/patches/size{size}.h5",
        code=script_code("train.py"),
    output:
        model="results/models/size{size}.pt",
        metrics="results/models/size{size}.metrics.csv",
    params:
        training=lambda wildcards: training_params(wildcards.size),
        network_input=config["training"]["network_input"],
        # Sets the side of the spatially held-out validation blocks (training.validation_block_px).
        largest_patch_size=max(config["patches"]["sizes"]),
        device=config["training"]["device"],
        seed=config["seed"],
        # CPU results are bitwise reproducible for a fixed thread count: part of the cache key.
        threads=config["training"]["threads"],
    log:
        "results/logs/train/size{size}.log",
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"
