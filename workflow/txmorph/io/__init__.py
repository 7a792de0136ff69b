"""The import stage: the user's images and spot tables in any supported format -> the canonical
section files under ``results/sections/{section}/``, and the one reader of those files.

* ``images`` (+ ``imagesource``, ``tiffplanes``): open a nuclei image lazily as one 2-D plane.
* ``vendors`` (+ ``plaintable``, ``tables``, ``collector``, ``coordinates``, ``fovs``): read a
  spot table in its vendor format as pixels of that plane.
* ``spots``: check the spots against the image and the genes, crop and scale them.
* ``spatialdata``: an image or points element of a SpatialData ``.zarr`` store, read the
  same way (the SpatialData import rules, the optional ``spatialdata`` package).
* ``imagewrite``: write the canonical ``image.tif`` (``spots.py`` writes ``spots.parquet``).
* ``canonical``: read them back; every rule after import reads canonical data through it.
* ``files``: helpers shared by the readers (file checks, line numbers, error messages).
* ``fingerprint``: content fingerprints of the raw inputs (the import rules' params), so an
  input replaced by another with an older timestamp still re-runs its import.

This file holds no code: importing a module of the subpackage must not make a rule depend on
the others (``script_code`` in workflow/rules/common.smk lists the modules a script imports).
"""
