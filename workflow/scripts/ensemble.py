"""Rule ensemble: the mean of every patch size's probability map, on the finest grid."""

from txmorph.mapsio import ProbabilityMap, read_probability_map, write_probability_map
from txmorph.probmap import ensemble
from txmorph.scripting import run_rule


def main(smk, log):
    maps = [read_probability_map(path) for path in smk.input.maps]
    finest = min(maps, key=lambda m: m.stride)
    for other in maps:
        if other.classes != finest.classes:
            raise ValueError(f"class lists differ between probability maps: {smk.input.maps}")
    grid = finest.probabilities.shape[1:]
    log.info("averaging %d maps on the stride-%d grid %s", len(maps), finest.stride, grid)
    mean = ensemble([(m.probabilities, m.stride) for m in maps], finest.stride, grid)
    write_probability_map(
        smk.output[0], ProbabilityMap(mean, finest.classes, finest.stride, patch_size=0)
    )


run_rule(main, snakemake)  # noqa: F821 (injected by Snakemake)
