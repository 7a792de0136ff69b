FROM condaforge/miniforge3:latest
LABEL io.github.snakemake.containerized="true"
LABEL io.github.snakemake.conda_env_hash="09229c9da3c17b6957ddf295aa5153a3ad7f40f6ef5ad94d6d53ef85bee8dd84"
# Conda environment:
#   source: envs/data.yaml
#   prefix: /conda-envs/448d359cefc4f25fbd92d0bc6fb75633
#   # Image, spot and HDF5 handling: demo data, input checks, tissue masks, patches, truth, Dice.
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - tifffile=2026.3.3
#     - imagecodecs=2026.3.6
#     - h5py=3.16.0
#     - pyarrow=26.0.1
#     - pyyaml=6.0.4
RUN mkdir -p /conda-envs/448d359cefc4f25fbd92d0bc6fb75633
COPY envs/data.yaml /conda-envs/448d359cefc4f25fbd92d0bc6fb75633/environment.yaml
# Conda environment:
#   source: envs/report.yaml
#   prefix: /conda-envs/b3f8ed9e9fa2613c6315f6abef7ca4bb
#   # Summary tables and figures.
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - tifffile=2026.3.3
#     - h5py=3.16.0
#     - pyarrow=26.0.1
#     - pyyaml=6.0.4
#     - matplotlib=3.11.2
RUN mkdir -p /conda-envs/b3f8ed9e9fa2613c6315f6abef7ca4bb
COPY envs/report.yaml /conda-envs/b3f8ed9e9fa2613c6315f6abef7ca4bb/environment.yaml
# Conda environment:
#   source: envs/torch.yaml
#   prefix: /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d
#   # CNN training and probability maps (CPU or CUDA build of PyTorch, chosen by conda).
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=3.1.1
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - tifffile=2026.3.3
#     - h5py=3.16.0
#     - pyyaml=6.0.4
#     - pytorch=2.13.0
RUN mkdir -p /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d
COPY envs/torch.yaml /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d/environment.yaml

RUN conda env create --prefix /conda-envs/448d359cefc4f25fbd92d0bc6fb75633 --file /conda-envs/448d359cefc4f25fbd92d0bc6fb75633/environment.yaml && \
    conda env create --prefix /conda-envs/b3f8ed9e9fa2613c6315f6abef7ca4bb --file /conda-envs/b3f8ed9e9fa2613c6315f6abef7ca4bb/environment.yaml && \
    conda env create --prefix /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d --file /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d/environment.yaml && \
    conda clean --all -y
