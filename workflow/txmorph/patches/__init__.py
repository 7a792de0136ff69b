"""Stage `patches` (workflow/rules/patches.smk): patch centres from the reference regions, the HDF5
patch files and the intensity normalisation every patch shares.
"""
