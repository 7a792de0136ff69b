"""What the Snakemake workflow computes from the config while it is parsed, as plain functions.

``workflow/rules/common.smk`` holds the run's constants, input functions and targets, each a
thin call into these modules with ``config`` (a dict) and names as arguments, so the logic is
importable and unit-tested without Snakemake. Nothing here imports snakemake: a user's mistake is
an ``InputError`` (or a problem string), which ``common.smk`` turns into a ``WorkflowError`` with
the same message.

- ``code_inputs``: the package modules a rule script imports (its ``code`` input), and the
  ``PYTHONPATH`` through which rule scripts find this checkout's package.
- ``settings``: per-rule look-ups in the config (training, import and check settings, seeds,
  memory, side files).
- ``rawinputs``: look-ups that read a section's raw files (pixel size, content fingerprints).
- ``problems``: checks across config keys and of reused models, before any job runs.
- ``targets``: the section lists, model names and the targets of rule ``all``.
"""
