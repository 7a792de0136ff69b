"""Lazy windows of a large tiled, compressed BigTIFF: txmorph.io.images (its own per-segment
reader, txmorph.io.tiffplanes) against tifffile's zarr interface (``TiffFile.aszarr()`` + zarr).

    python workflow/benchmarks/lazy_tiff.py /tmp/big.tif          # writes the file once
    python workflow/benchmarks/lazy_tiff.py /tmp/big.tif txmorph windows

Each reader runs in its own process (argv: file, reader in {txmorph, zarr}, mode in {open,
windows, strips}), so its peak RSS is its own; ``open`` measures the imports and the opening
alone. Needs zarr (the spatialdata extra). Results: docs/benchmark.md, "Lazy TIFF reading".
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

SIDE, TILE, WINDOW, WINDOWS = 16384, 512, 1024, 200


def write_test_image(path: str) -> None:
    """A SIDE x SIDE uint16 BigTIFF in TILE x TILE zlib tiles (~0.5 GB), written tile row by row."""
    import tifffile

    y, x = np.mgrid[0:TILE, 0:SIDE]
    band = ((np.sin(x / 37.0) + np.cos(y / 23.0)) * 8000 + 20000).astype(np.uint16)

    def tiles():
        for top in range(0, SIDE, TILE):
            rolled = np.roll(band, top, axis=1)
            for col in range(0, SIDE, TILE):
                yield rolled[:, col : col + TILE]

    tifffile.imwrite(path, tiles(), shape=(SIDE, SIDE), dtype=np.uint16, tile=(TILE, TILE),
                     compression="zlib", compressionargs={"level": 1}, bigtiff=True)


def run(path: str, reader: str, mode: str) -> str:
    """Read WINDOWS random WINDOW^2 windows, or the plane in full-width strips of WINDOW rows."""
    start = time.perf_counter()
    if reader == "txmorph":
        from txmorph.io.images import open_image

        source = open_image(path)
        shape = source.shape

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return source.read(slice(r0, r1), slice(c0, c1))
    else:
        import tifffile
        import zarr

        array = zarr.open(tifffile.TiffFile(path).aszarr(series=0, level=0), mode="r")
        shape = array.shape

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return np.asarray(array[r0:r1, c0:c1])

    rng, checksum = np.random.default_rng(0), 0
    if mode == "windows":
        for _ in range(WINDOWS):
            r, c = rng.integers(0, shape[0] - WINDOW), rng.integers(0, shape[1] - WINDOW)
            checksum += int(read(r, r + WINDOW, c, c + WINDOW)[::97, ::97].sum())
    elif mode == "strips":
        for top in range(0, shape[0], WINDOW):
            checksum += int(read(top, min(top + WINDOW, shape[0]), 0, shape[1])[::97, ::97].sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return (f"{reader} {mode}: {time.perf_counter() - start:.2f} s, peak RSS {peak:.0f} MiB, "
            f"checksum {checksum}")


if __name__ == "__main__":
    if len(sys.argv) == 2 or not Path(sys.argv[1]).exists():
        write_test_image(sys.argv[1])
    if len(sys.argv) == 4:
        print(run(*sys.argv[1:4]))
