"""Stage `genes` (workflow/rules/genes.smk): candidate genes and marker sets, checked and ranked by
a DAPI hold-out probe.
"""
