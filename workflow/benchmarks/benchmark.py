"""Benchmark of whole-section probability maps: ``python workflow/benchmarks/benchmark.py``
(``make benchmark``); a command-line tool, kept outside the txmorph package that it measures.

In one run, on synthetic sections and randomly initialised models of every patch size:

1. a large float32 matmul, the machine's attainable GFLOP/s for this thread count;
2. per patch size, at output stride 1: output megapixels/s of the dense path
   (``paint_probabilities``, filter rarefaction) and of the naive batched per-patch sliding
   window (cut the patch around every output pixel, classify in batches) on a crop it can
   finish, their ratio, the achieved GFLOP/s of the whole dense pass, of its convolutions
   and of its conv-heavy layers (timed by forward hooks), and max |dp| between dense and per-patch at >= 1000 random
   locations, borders included;
3. the ensemble map of a ``--section`` x ``--section`` section at the pipeline's default
   (native) strides, in a child process: its time and peak RSS, read tile by tile from a
   memory-mapped TIFF and written tile by tile to chunked HDF5, as the rules do.

``--spots N`` instead measures only the import of a synthetic N-row CSV spot table (about
300 gene names, x/y in pixels) by the rule ``import_spots``'s own script, in a child process:
its time and peak RSS.

The last line printed is all figures as one JSON object. Timings are wall-clock on a shared
machine: compare the ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from txmorph.classes import class_names
from txmorph.io.canonical import MappedImage
from txmorph.patches.intensity import intensity_range, normalise
from txmorph.probmap.dense import conv_flops_per_output
from txmorph.probmap.mapsio import ENSEMBLE, cnn_model, create_probability_dataset
from txmorph.train.model import INTENSITY_METHOD, PatchClassifier, fused_for_inference
from txmorph.probmap.paint import (
    ensemble_streamed,
    outputs_per_tile,
    paint_probabilities,
    probability_grid_shape,
)

SIZES = (32, 64, 96, 128, 160)
METADATA = {"normalisation": {"intensity_method": INTENSITY_METHOD}}
CLASSES = class_names(["gene_a", "gene_b"])


def synthetic_section(height: int, width: int, seed: int = 0, rows_per_strip: int = 1024,
                      out: np.ndarray | None = None) -> np.ndarray:
    """A uint16 image with blob-like texture, generated strip by strip (into ``out`` if given)."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width), np.uint16) if out is None else out
    cols = np.arange(width)
    for top in range(0, height, rows_per_strip):
        rows = np.arange(top, min(height, top + rows_per_strip))[:, None]
        texture = np.sin(rows / 7.0) * np.cos(cols / 9.0) + np.sin((rows + cols) / 53.0)
        noise = rng.random((len(rows), width))
        image[top:top + len(rows)] = (1000 + 600 * texture + 400 * noise).astype(np.uint16)
    return image


def random_model(patch_size: int, seed: int = 0) -> PatchClassifier:
    torch.manual_seed(seed + patch_size)
    return PatchClassifier(patch_size, 4).eval()


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def naive_probabilities(model: PatchClassifier, padded: np.ndarray, rows: np.ndarray,
                        cols: np.ndarray, batch: int = 256) -> np.ndarray:
    """Per-patch classification of the patches with top-left corners (rows[k], cols[k])."""
    size = model.patch_size
    net = fused_for_inference(model).to(memory_format=torch.channels_last)
    out = []
    with torch.inference_mode():
        for k in range(0, len(rows), batch):
            patches = np.stack([padded[r:r + size, c:c + size]
                                for r, c in zip(rows[k:k + batch], cols[k:k + batch])])
            x = torch.from_numpy(patches)[:, None].contiguous(memory_format=torch.channels_last)
            out.append(torch.softmax(net(x), dim=1).numpy())
    return np.concatenate(out)


def conv_gflops(model: PatchClassifier, tile: np.ndarray) -> tuple[float, float]:
    """GFLOP/s of all convolutions, and of the conv-heavy ones, in a dense stride-1 pass.

    Each conv is timed by forward hooks. At stride 1 every conv runs once per output pixel.
    "Conv-heavy" are the 3x3 convs with >= 16 input channels; the first conv (1 input
    channel, 18 FLOPs per byte written) and the 1x1 head convs are bound by memory traffic.
    """
    from txmorph.probmap.dense import dense_logits

    net = fused_for_inference(model).to(memory_format=torch.channels_last)
    spent: dict[torch.nn.Module, float] = {}
    started = [0.0]

    def before(*_: Any) -> None:
        started[0] = time.perf_counter()

    def after(module: torch.nn.Module, *_: Any) -> None:
        spent[module] = spent.get(module, 0.0) + time.perf_counter() - started[0]

    x = torch.from_numpy(tile)[None, None].contiguous(memory_format=torch.channels_last)
    outputs = (tile.shape[0] - model.patch_size + 1) * (tile.shape[1] - model.patch_size + 1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.inference_mode():
        dense_logits(net, x, 1)
        for conv in convs:
            conv.register_forward_pre_hook(before)
            conv.register_forward_hook(after)
        dense_logits(net, x, 1)

    def rate(layers: list[torch.nn.Conv2d]) -> float:
        flops = sum(2 * c.in_channels * c.out_channels * c.kernel_size[0] * c.kernel_size[1]
                    for c in layers) * outputs
        return flops / sum(spent[c] for c in layers) / 1e9

    heavy = [c for c in convs if c.kernel_size[0] > 1 and c.in_channels >= 16]
    return rate(convs), rate(heavy)


def measure_size(patch_size: int, side: int, crop: int, n_random: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + patch_size)
    image = synthetic_section(side, side, seed)
    low, high = intensity_range(image)
    model = random_model(patch_size, seed)
    dense = np.empty((4, side, side), np.float32)
    start = time.perf_counter()
    paint_probabilities(image, model, METADATA, (low, high), dense, tile_size=1024, output_stride=1)
    dense_seconds = time.perf_counter() - start
    # Patch centred at (i, j) starts at (i - S//2, j - S//2): pad by reflection like inference.
    pad = patch_size
    padded = np.pad(normalise(image, low, high), pad, mode="reflect")
    corner = rng.integers(0, side - crop)
    grid_r, grid_c = np.meshgrid(np.arange(crop) + corner, np.arange(crop) + corner, indexing="ij")
    offset = pad - patch_size // 2
    start = time.perf_counter()
    naive = naive_probabilities(model, padded, grid_r.ravel() + offset, grid_c.ravel() + offset)
    naive_seconds = time.perf_counter() - start
    # |dp| on the crop and at random locations including the image's border rows/columns.
    border = np.array([(0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)] +
                      [(0, c) for c in rng.integers(0, side, 8)] +
                      [(r, side - 1) for r in rng.integers(0, side, 8)])
    points = np.concatenate([border, rng.integers(0, side, size=(n_random, 2))])
    at_points = naive_probabilities(model, padded, points[:, 0] + offset, points[:, 1] + offset)
    delta = max(np.abs(at_points - dense[:, points[:, 0], points[:, 1]].T).max(),
                np.abs(naive - dense[:, grid_r.ravel(), grid_c.ravel()].T).max())
    flops = conv_flops_per_output(model, 1)
    tile = normalise(image[:1024 + patch_size - 1, :1024 + patch_size - 1], low, high)
    all_convs, heavy_convs = conv_gflops(model, tile)
    dense_mpx = side * side / dense_seconds / 1e6
    naive_mpx = crop * crop / naive_seconds / 1e6
    return {
        "dense_mpx_s": round(dense_mpx, 3),
        "naive_mpx_s": round(naive_mpx, 5),
        "speedup": round(dense_mpx / naive_mpx, 1),
        "dense_gflops": round(side * side * flops / dense_seconds / 1e9, 1),
        "conv_gflops": round(all_convs, 1),
        "conv_heavy_gflops": round(heavy_convs, 1),
        "max_abs_dp": float(delta),
        "locations_checked": int(len(points) + crop * crop),
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def scale_run(side: int, workdir: Path, tile_size: int, seed: int) -> dict[str, Any]:
    """Ensemble map of a side x side section at native strides, as the rules compute it."""
    import tifffile

    path = workdir / "section.tif"
    start = time.perf_counter()
    # Written strip by strip through short-lived mappings: making the input must not leave the
    # section's pages in this process's resident set, which measures the maps alone.
    tifffile.memmap(path, shape=(side, side), dtype=np.uint16, bigtiff=True)._mmap.close()
    offset = MappedImage(path).offset
    for top in range(0, side, 1024):
        rows = min(1024, side - top)
        strip = np.memmap(path, dtype=np.uint16, mode="r+", offset=offset + top * side * 2,
                          shape=(rows, side))
        strip[:] = synthetic_section(rows, side, seed + top)
        strip.flush()
        strip._mmap.close()
        del strip
    made = time.perf_counter() - start
    image = MappedImage(path)  # as the probmap rule reads it
    start = time.perf_counter()
    low, high = intensity_range(image)
    maps, seconds = [], {}
    for size in SIZES:
        model = random_model(size, seed)
        grid = probability_grid_shape(image.shape, model.stride)
        tile = outputs_per_tile(tile_size, model.stride)
        handle = h5py.File(workdir / f"size{size}.h5", "w")
        out = create_probability_dataset(handle, CLASSES, grid, model.stride,
                                         model=cnn_model(size), patch_size=size,
                                         chunk=(tile, tile))
        t0 = time.perf_counter()
        paint_probabilities(image, model, METADATA, (low, high), out, tile_size=tile_size)
        seconds[f"size{size}"] = round(time.perf_counter() - t0, 1)
        maps.append((handle, model.stride))
    t0 = time.perf_counter()
    finest = min(maps, key=lambda m: m[1])
    grid = finest[0]["probabilities"].shape[1:]
    with h5py.File(workdir / "ensemble.h5", "w") as handle:
        out = create_probability_dataset(handle, CLASSES, grid, finest[1], model=ENSEMBLE,
                                         chunk=(256, 1024))
        ensemble_streamed([(h["probabilities"], s) for h, s in maps], out, finest[1])
    seconds["ensemble"] = round(time.perf_counter() - t0, 1)
    for handle, _ in maps:
        handle.close()
    return {
        "side": side,
        "seconds_total": round(time.perf_counter() - start, 1),
        "seconds": seconds,
        "seconds_making_input": round(made, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "ensemble_grid": list(grid),
    }


def write_spot_table(path: Path, rows: int, seed: int = 0, genes: int = 300,
                     side: float = 20000.0) -> list[str]:
    """A CSV spot table: gene (``genes`` names, Zipf-like frequencies), x, y (pixels with 3
    decimals in [0, side)); written 1M rows at a time. Returns the names, most frequent first."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    names: list[str] = []
    while len(names) < genes:
        name = "".join(rng.choice(letters, rng.integers(3, 6))) + str(rng.integers(1, 20))
        names += [] if name in names else [name]
    weights = 1.0 / np.arange(1, genes + 1)
    labels = np.array(names, dtype=object)
    schema = pa.schema([("gene", pa.string()), ("x", pa.float64()), ("y", pa.float64())])
    options = pacsv.WriteOptions(quoting_style="none")
    with pacsv.CSVWriter(path, schema, write_options=options) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            gene = labels[rng.choice(genes, n, p=weights / weights.sum())]
            xy = np.floor(rng.uniform(0, side, (2, n)) * 1000) / 1000
            writer.write_table(pa.table({"gene": pa.array(gene, pa.string()), "x": xy[0],
                                         "y": xy[1]}, schema=schema))
    return names


# The child process of the spot-import run: the rule's script on a stand-in for Snakemake's
# `snakemake` object, then its time and peak RSS as JSON (argv: spots, workdir, genes...).
SPOT_IMPORT_CHILD = """
import json, resource, runpy, sys, time
from pathlib import Path
from types import SimpleNamespace as NS
import txmorph
spots, work, genes = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
(work / "image.json").write_text(json.dumps(
    {"level_scale": 1.0, "source_shape": [20000, 20000], "shape": [20000, 20000]}))
section = {"name": "bench", "spots_format": "table", "units": "px", "pixel_size_um": 0.5,
           "columns": {"gene": "gene", "x": "x", "y": "y"}, "origin_um": [0.0, 0.0],
           "transform": None, "min_qv": 20, "fov_positions": None, "downsample": 1,
           "region": None, "spots_outside_image": "error"}
smk = NS(rule="import_spots", log=[str(work / "log.txt")],
         input=NS(spots=spots, image_info=str(work / "image.json")),
         params=NS(section=section, genes=genes, fingerprint={}),
         output=NS(spots=str(work / "spots.parquet"), summary=str(work / "spots.json")))
script = Path(txmorph.__file__).parents[1] / "scripts" / "import_spots.py"
start = time.perf_counter()
runpy.run_path(str(script), init_globals={"snakemake": smk})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
print(json.dumps({"seconds": round(time.perf_counter() - start, 1),
                  "peak_rss_mib": round(peak, 1),
                  "spots_written": json.loads((work / "spots.json").read_text())["spots_total"]}))
"""


def spot_import_run(rows: int, workdir: Path, seed: int) -> dict[str, Any]:
    """Rule import_spots on a synthetic ``rows``-row CSV, in a child process: time, peak RSS."""
    path = workdir / "spots.csv"
    start = time.perf_counter()
    names = write_spot_table(path, rows, seed)
    made = time.perf_counter() - start
    child = subprocess.run([sys.executable, "-c", SPOT_IMPORT_CHILD, str(path), str(workdir),
                            *names[:2]], check=True, capture_output=True, text=True)
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    return {"rows": rows, "csv_mib": round(path.stat().st_size / 2**20, 1), **figures,
            "seconds_making_input": round(made, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python workflow/benchmarks/benchmark.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--side", type=int, default=1536, help="dense test image side (px)")
    parser.add_argument("--crop", type=int, default=40, help="naive sliding-window crop side")
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--section", type=int, default=20000, help="scale-run section side; 0 skips")
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spots", type=int, default=0,
                        help="only the spot-import run, on a CSV of this many rows")
    parser.add_argument("--scale-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.spots:
        with tempfile.TemporaryDirectory(prefix="txmorph-bench-") as tmp:
            run = spot_import_run(args.spots, Path(tmp), args.seed)
        print(f"import_spots of a {run['rows']}-row CSV ({run['csv_mib']} MiB): "
              f"{run['seconds']} s, peak RSS {run['peak_rss_mib']} MiB")
        print(json.dumps({"spot_import": run}))
        return 0
    torch.set_num_threads(args.threads)
    if args.scale_only:  # the child process of the scale run
        print(json.dumps(scale_run(args.section, args.scale_only, args.tile_size, args.seed)))
        return 0
    figures: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__}
    figures["matmul_gflops"] = round(matmul_gflops(), 1)
    print(f"matmul 2048^3 float32: {figures['matmul_gflops']} GFLOP/s ({args.threads} threads)")
    print("size  dense Mpx/s  naive Mpx/s  speedup  GFLOP/s: dense  convs  heavy convs  max|dp|")
    per_size = {}
    for size in args.sizes:
        row = measure_size(size, args.side, args.crop, args.locations, args.seed)
        per_size[str(size)] = row
        print(f"{size:4d}  {row['dense_mpx_s']:11.3f}  {row['naive_mpx_s']:11.5f}  "
              f"{row['speedup']:7.1f}  {row['dense_gflops']:14.1f}  {row['conv_gflops']:5.1f}  "
              f"{row['conv_heavy_gflops']:11.1f}  {row['max_abs_dp']:.1e}", flush=True)
    figures["stride1"] = per_size
    figures["heavy_conv_fraction_of_matmul"] = round(
        min(r["conv_heavy_gflops"] for r in per_size.values()) / figures["matmul_gflops"], 2)
    if args.section:
        with tempfile.TemporaryDirectory(prefix="txmorph-bench-") as tmp:
            child = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--section", str(args.section),
                 "--tile-size", str(args.tile_size), "--threads", str(args.threads),
                 "--seed", str(args.seed), "--scale-only", tmp],
                check=True, capture_output=True, text=True)
        scale = json.loads(child.stdout.strip().splitlines()[-1])
        figures["scale"] = scale
        print(f"ensemble map of a {args.section}x{args.section} section (native strides): "
              f"{scale['seconds_total']} s, peak RSS {scale['peak_rss_mib']} MiB; per step "
              f"{scale['seconds']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
