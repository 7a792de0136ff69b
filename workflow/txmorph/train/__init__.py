"""Stage `train` (workflow/rules/train.smk): one CNN per patch size, its model, validation split,
augmentation, loop and records.
"""
