"""Stage `evaluate` (workflow/rules/evaluate.smk): Dice of the arg-max labels against the reference
regions, and the summary's figure and tables.
"""
