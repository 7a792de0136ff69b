"""Stage `probmap` (workflow/rules/probmap.smk): exact dense probability maps of whole sections,
their grid, files and ensemble.
"""
