"""The export stage: results in the formats of image viewers and the scverse tools.

* ``ometiff``: each probability map as a pyramidal OME-TIFF (rule export_ometiff), for napari
  and QuPath.
* ``spatialdata``: one SpatialData ``.zarr`` per section, image, maps, labels, reference and
  Dice (rule export_spatialdata; the optional ``spatialdata`` env).

This file holds no code: importing one module must not make a rule depend on the other
(``script_code`` in workflow/rules/common.smk lists the modules a script imports).
"""
