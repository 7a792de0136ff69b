# A non-CNN baseline (txmorph.baseline): local intensity and nuclear-density statistics at three
# window sizes tied to the patch sizes (and with `baseline.features: nuclei` the shape and
# texture of the nuclei in them, txmorph.nucleus_features), classified by multinomial logistic
# regression. Trained on the CNNs' patch centres and labels, painted on the CNNs' grid and
# scored by the same Dice rule as model `baseline` (SCORED_MODELS in common.smk); it is not
# part of the ensemble. Its settings: BASELINE_FEATURES, BASELINE_NUCLEUS_UM, BASELINE_L2,
# baseline_windows and baseline_stride (common.smk, txmorph.pipeline.settings). The model file
# names its feature set, so painting reads it from there.


rule baseline_train:
    input:
        # Every size holds the same centres and labels; the smallest file is read.
        patches=f"results/patches/size{PATCH_SIZES[0]}.h5",
        images=expand("results/sections/{section}/image.tif", section=TRAIN_SECTIONS),
        code=script_code("baseline_train.py"),
    output:
        "results/models/baseline.npz",
    params:
        windows=baseline_windows(),
        features=BASELINE_FEATURES,
        nucleus_diameter_um=BASELINE_NUCLEUS_UM,
        l2=BASELINE_L2,
        pixel_size_um={s: section_params(s)["pixel_size_um"] for s in TRAIN_SECTIONS},
    log:
        "results/logs/baseline_train/baseline.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/baseline_train.py"


rule baseline_probmap:
    input:
        image="results/sections/{section}/image.tif",
        model="results/models/baseline.npz",
        code=script_code("baseline_probmap.py"),
    output:
        f"results/probmaps/{{section}}/{BASELINE}.h5",
    params:
        stride=baseline_stride(),
        tile_size=config["probmap"]["tile_size"],
        nucleus_diameter_um=BASELINE_NUCLEUS_UM,
        pixel_size_um=lambda wildcards: section_params(wildcards.section)["pixel_size_um"],
    log:
        "results/logs/baseline_probmap/{section}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/baseline_probmap.py"
