FROM condaforge/miniforge3:latest
LABEL io.github.snakemake.containerized="true"
LABEL io.github.snakemake.conda_env_hash="c52b4188f5c1cade01593e4376f7231228a7d2933feb841bc03f183feb5cc118"
# Conda environment:
#   source: envs/data.yaml
#   prefix: /conda-envs/018dd21da73c62e1f7f2925d11d1fda2
#   # Image, spot and HDF5 handling: demo data, input checks, tissue masks, patches, truth, Dice.
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=2.3.3
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - scikit-learn=1.9.1
#     - tifffile=2026.3.3
#     - imagecodecs=2026.3.6
#     - h5py=3.16.0
#     - pyarrow=26.0.1
#     - pyyaml=6.0.4
#     - pip=25.3
#     - pip:
#         - points2regions==0.0.6  # not on conda-forge: from PyPI
RUN mkdir -p /conda-envs/018dd21da73c62e1f7f2925d11d1fda2
COPY envs/data.yaml /conda-envs/018dd21da73c62e1f7f2925d11d1fda2/environment.yaml
# Conda environment:
#   source: envs/report.yaml
#   prefix: /conda-envs/530046070d9ac54aaba44b3f51a78dec
#   # Summary tables and figures; the gene_candidates target (its niches: K: points2regions).
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=2.3.3
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - scikit-learn=1.9.1
#     - tifffile=2026.3.3
#     - h5py=3.16.0
#     - pyarrow=26.0.1
#     - pyyaml=6.0.4
#     - matplotlib=3.11.2
#     - pip=25.3
#     - pip:
#         - points2regions==0.0.6  # not on conda-forge: from PyPI
RUN mkdir -p /conda-envs/530046070d9ac54aaba44b3f51a78dec
COPY envs/report.yaml /conda-envs/530046070d9ac54aaba44b3f51a78dec/environment.yaml
# Conda environment:
#   source: envs/spatialdata.yaml
#   prefix: /conda-envs/0bb8a215060003d59bc08f2c4c0575da
#   # SpatialData in and out (workflow/rules/spatialdata.smk): reading .zarr sections, writing the
#   # per-section SpatialData stores. Same pins as requirements-spatialdata.txt.
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=2.3.3
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - tifffile=2026.3.3
#     - imagecodecs=2026.3.6
#     - h5py=3.16.0
#     - pyarrow=26.0.1
#     - pyyaml=6.0.4
#     - spatialdata=0.7.3
#     - anndata=0.12.19
#     - zarr=3.1.6
#     - dask=2026.1.1
#     - xarray=2026.9.0
#     - ome-zarr=0.15.0
RUN mkdir -p /conda-envs/0bb8a215060003d59bc08f2c4c0575da
COPY envs/spatialdata.yaml /conda-envs/0bb8a215060003d59bc08f2c4c0575da/environment.yaml
# Conda environment:
#   source: envs/torch.yaml
#   prefix: /conda-envs/7c3eef897c33b5a322bd3e3908678270
#   # CNN training and probability maps (CPU or CUDA build of PyTorch, chosen by conda).
#   channels:
#     - conda-forge
#     - nodefaults
#   dependencies:
#     - python=3.11
#     - numpy=2.4.6
#     - pandas=2.3.3
#     - scipy=1.17.1
#     - scikit-image=0.26.0
#     - tifffile=2026.3.3
#     - h5py=3.16.0
#     - pyyaml=6.0.4
#     - pytorch=2.13.0
RUN mkdir -p /conda-envs/7c3eef897c33b5a322bd3e3908678270
COPY envs/torch.yaml /conda-envs/7c3eef897c33b5a322bd3e3908678270/environment.yaml

RUN conda env create --prefix /conda-envs/018dd21da73c62e1f7f2925d11d1fda2 --file /conda-envs/018dd21da73c62e1f7f2925d11d1fda2/environment.yaml && \
    conda env create --prefix /conda-envs/530046070d9ac54aaba44b3f51a78dec --file /conda-envs/530046070d9ac54aaba44b3f51a78dec/environment.yaml && \
    conda env create --prefix /conda-envs/0bb8a215060003d59bc08f2c4c0575da --file /conda-envs/0bb8a215060003d59bc08f2c4c0575da/environment.yaml && \
    conda env create --prefix /conda-envs/7c3eef897c33b5a322bd3e3908678270 --file /conda-envs/7c3eef897c33b5a322bd3e3908678270/environment.yaml && \
    conda clean --all -y
