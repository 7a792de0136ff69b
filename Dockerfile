FROM condaforge/miniforge3:latest
LABEL io.github.snakemake.containerized="true"
LABEL io.github.snakemake.conda_env_hash="a4fa6f4abdbe0812d921eaef1f074908df9fe1ed6e2c5886fcd841b8a1403f06"
# Conda environment:
#   source: envs/data.yaml
#   prefix: /conda-envs/63d856e17632047e919ab15222a3d177
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
#     - h5py=3.16.0
#     - pyyaml=6.0.4
RUN mkdir -p /conda-envs/63d856e17632047e919ab15222a3d177
COPY envs/data.yaml /conda-envs/63d856e17632047e919ab15222a3d177/environment.yaml
# Conda environment:
#   source: envs/report.yaml
#   prefix: /conda-envs/f59027e8e8c1647d7a5819376726517c
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
#     - pyyaml=6.0.4
#     - matplotlib=3.11.2
RUN mkdir -p /conda-envs/f59027e8e8c1647d7a5819376726517c
COPY envs/report.yaml /conda-envs/f59027e8e8c1647d7a5819376726517c/environment.yaml
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

RUN conda env create --prefix /conda-envs/63d856e17632047e919ab15222a3d177 --file /conda-envs/63d856e17632047e919ab15222a3d177/environment.yaml && \
    conda env create --prefix /conda-envs/f59027e8e8c1647d7a5819376726517c --file /conda-envs/f59027e8e8c1647d7a5819376726517c/environment.yaml && \
    conda env create --prefix /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d --file /conda-envs/6efb90d85e484b0af1b7d6a73a0fa50d/environment.yaml && \
    conda clean --all -y
