"""Rule inputs_checked: the input checks of every section with spots, in one file.

Its only job is to order the work (rule centres waits for it); the file lists, per section,
how many findings of each severity its checks.json holds.
"""

import json
from collections import Counter
from pathlib import Path

from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    overview = {}
    for name, path in zip(smk.params.sections, smk.input.checks):
        findings = json.loads(Path(path).read_text()).get("findings", [])
        overview[name] = dict(Counter(finding["severity"] for finding in findings))
        log.info("section %s: findings %s", name, overview[name] or "none")
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_text(json.dumps(overview, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
