"""Windowed reads of the canonical section image without holding the section in memory.

import_image writes every section as one uncompressed, contiguous TIFF page. A long-lived
``numpy.memmap`` of it would be cheap to read, but every page it touches stays mapped into the
process: reading a whole 20000 x 20000 section tile by tile would end with the whole file in
the resident set. ``MappedImage`` maps the file for one read and unmaps it right after, so the
memory of a job that reads a section tile by tile stays that of one window.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import tifffile

BAND_BYTES = 1 << 26  # the most of the file mapped at once (64 MiB)


class MappedImage:
    """A 2-D image in an uncompressed contiguous TIFF, read window by window.

    Supports ``image[r0:r1, c0:c1]`` (also with steps), ``shape``, ``dtype``, ``ndim``, ``size``:
    enough for ``txmorph.probmap.paint_probabilities`` and ``txmorph.intensity``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        with tifffile.TiffFile(self.path) as tif:
            page = tif.pages.first
            if not page.is_contiguous or page.compression != 1 or len(page.shape) != 2:
                raise ValueError(
                    f"{self.path}: not an uncompressed contiguous 2-D TIFF page (written by "
                    "rule import_image); re-run that rule"
                )
            self.offset = int(page.dataoffsets[0])
            self.shape: tuple[int, int] = (int(page.shape[0]), int(page.shape[1]))
            self.dtype = np.dtype(page.dtype).newbyteorder(tif.byteorder)
        self.ndim = 2
        self.size = self.shape[0] * self.shape[1]

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        start, stop, step = rows.indices(self.shape[0])
        if step < 1:
            raise ValueError("MappedImage rows need a positive step")
        # Map at most BAND_BYTES of the file at a time, even for a strided read of every row.
        row_bytes = self.shape[1] * self.dtype.itemsize
        per_band = max(1, BAND_BYTES // (row_bytes * step))
        parts = [self._read(top, min(stop, top + per_band * step), step, cols)
                 for top in range(start, stop, per_band * step)]
        if not parts:
            return np.empty((0, len(range(*cols.indices(self.shape[1])))),
                            self.dtype.newbyteorder("="))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _read(self, top: int, bottom: int, step: int, cols: slice) -> np.ndarray:
        """Rows ``top:bottom:step`` through a mapping of just those rows, unmapped after."""
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r",
                           offset=self.offset + top * self.shape[1] * self.dtype.itemsize,
                           shape=(bottom - top, self.shape[1]))
        try:
            return np.array(mapped[::step, cols], dtype=self.dtype.newbyteorder("="))
        finally:
            mapped._mmap.close()  # unmap now: the pages read leave the resident set
            del mapped


def spots_by_gene(spots: pd.DataFrame, genes: Sequence[str]) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each gene's spots, in the order of ``genes``."""
    return {
        gene: spots.loc[spots["gene"] == gene, ["x", "y"]].to_numpy(np.float64) for gene in genes
    }


def spots_by_class(
    spots: pd.DataFrame, groups: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each class's spots (the spots of all its genes), in the order of
    ``groups`` (``{class name: [genes]}``; a single gene is ``{gene: [gene]}``)."""
    return {
        name: spots.loc[spots["gene"].isin(list(genes)), ["x", "y"]].to_numpy(np.float64)
        for name, genes in groups.items()
    }
