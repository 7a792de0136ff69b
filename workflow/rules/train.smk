# Optionally a self-supervised encoder from every section's DAPI (training.pretrain), then
# one CNN per patch size, trained on that size's patches.


rule pretrain:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        # Images and DAPI tissue of every section the run maps or trains on; never spots or
        # reference regions (no labels: legitimate on the sections the models will paint).
        images=expand("results/sections/{section}/image.tif",
                      section=TRAIN_SECTIONS + MAPPED_SECTIONS),
        dapi_masks=expand("results/masks/{section}.dapi.tif",
                          section=TRAIN_SECTIONS + MAPPED_SECTIONS),
        code=script_code("pretrain.py"),
    output:
        ENCODER,
    params:
        pretrain={key: value for key, value in config["training"]["pretrain"].items()
                  if key not in ("threads", "freeze")},
        sizes=PATCH_SIZES,
        network_input=config["training"]["network_input"],
        widths=config["training"]["widths"],
        augment=config["training"]["augment"],
        device=config["training"]["device"],
        seed=config["seed"],
        # CPU results are bitwise reproducible for a fixed thread count: part of the cache key.
        threads=config["training"]["pretrain"]["threads"],
    log:
        "results/logs/pretrain/pretrain.log",
    threads: config["training"]["pretrain"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain.py"


rule train:
    # Deterministic and expensive: shareable between workflows with --cache.
    cache: True
    input:
        patches="results/patches/size{size}.h5",
        encoder=ENCODER if PRETRAIN else [],
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
        freeze_encoder=PRETRAIN and config["training"]["pretrain"]["freeze"],
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
