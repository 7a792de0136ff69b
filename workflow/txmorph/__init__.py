"""txmorph: learn tissue morphology from a nuclei image with spatial transcriptomics as labels.

The science lives here as small, typed, pure functions (numpy arrays in, arrays out);
the Snakemake rule scripts under ``workflow/scripts`` only parse the ``snakemake`` object,
call these functions and write outputs.
"""

__version__ = "0.1.0"
