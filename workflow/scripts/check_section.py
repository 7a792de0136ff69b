"""Rule check_section: sanity checks of an imported section (see txmorph.checks).

Errors stop the run here, before patches, training or probability maps; warnings and
not-evaluable findings are logged and written to the section's checks JSON, which the
truth, dice and summary rules read.
"""

import json
from pathlib import Path

from txmorph.checks import (CheckSettings, apply_policy, check_section, failure_message,
                            grey_levels)
from txmorph.errors import InputError
from txmorph.io.canonical import MappedImage, read_mask, read_spots
from txmorph.outputs import atomic_path
from txmorph.scripting import run_rule


def main(smk, log):
    params = smk.params
    mask = read_mask(smk.input.mask)
    levels = grey_levels(MappedImage(smk.input.image), mask)
    spots = read_spots(smk.input.spots)
    # Checks are per class: a marker set's spots count together ("" = no chosen gene).
    gene_class = {gene: name for name, genes in params.groups.items() for gene in genes}
    spots["gene"] = spots["gene"].astype(str).map(gene_class).fillna("")
    summary = json.loads(Path(smk.input.spots_summary).read_text())
    filtered = summary.get("filtered", {})
    off_image = int(filtered.get("outside_image", 0))
    checks = check_section(
        section=params.section["name"],
        role=params.role,
        tissue_mask=mask,
        spots=spots,
        genes=list(params.groups),
        pixel_size_um=params.section["pixel_size_um"],
        patch_sizes=params.patch_sizes,
        sigma_um=params.sigma_um,
        spots_dropped_off_image=off_image,
        spots_read=summary["spots_total"] + off_image + int(filtered.get("outside_region", 0)),
        settings=CheckSettings(**params.settings),
        files=params.files,
        levels=levels,
        blocks=params.section.get("blocks"),
    )
    apply_policy(checks, params.on_failure)
    record = checks.to_json()
    log.info("checks of section %s: %s", checks.section,
             json.dumps({k: v for k, v in record.items() if k != "findings"}))
    for finding in checks.findings:
        if finding.severity != "error":
            log.warning("%s: %s", finding.severity.replace("_", " "), finding.message)
    message = failure_message(checks)
    if message:
        raise InputError(message)
    with atomic_path(smk.output[0]) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
