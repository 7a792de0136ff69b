"""Rule export_ometiff: one probability map as pyramidal OME-TIFF (class names as channels; a
niche's with its genes, e.g. ``niche1 (Mbp, Plp1, Mobp)``)."""

from txmorph.export.ometiff import write_ome_tiff
from txmorph.probmap.mapsio import read_probability_map
from txmorph.reference import class_labels, read_reference
from txmorph.scripting import run_rule


def main(smk, log):
    prob_map = read_probability_map(smk.input.probmap)
    pixel_size_um = smk.params.pixel_size_um * prob_map.stride
    labels = class_labels(read_reference(smk.input.reference), prob_map.classes)
    channels = [labels[name] for name in prob_map.classes]
    write_ome_tiff(smk.output[0], prob_map.probabilities, channels, pixel_size_um)
    log.info("wrote %s: channels %s, %.3g µm per pixel", smk.output[0], channels, pixel_size_um)


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
