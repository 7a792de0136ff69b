"""The one reader of the canonical data that the import stage and later rules write: every rule
after import reads ``results/sections/{s}/image.tif``, ``image.json``, ``spots.parquet``, the
masks and the reference regions through these functions, never through the user's formats.

* ``MappedImage`` / ``read_image`` / ``lazy_image``: ``image.tif`` by window, whole, or as a
  dask array (export);
* ``read_image_info``: ``image.json``; ``read_spots``: ``spots.parquet`` (gene, x, y in pixels
  of ``image.tif``); ``spots_by_class``: its coordinates per class;
* ``read_mask``: ``masks/{s}.tif`` and ``masks/{s}.dapi.tif``; ``read_labels``: ``truth/{s}.tif``.

import_image writes every section as one uncompressed, contiguous TIFF page. A long-lived
``numpy.memmap`` of it would be cheap to read, but every page it touches stays mapped into the
process: reading a whole 20000 x 20000 section tile by tile would end with the whole file in
the resident set. ``MappedImage`` maps the file for one read and unmaps it right after, so the
memory of a job that reads a section tile by tile stays that of one window.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import tifffile

BAND_BYTES = 1 << 26  # the most of the file mapped at once (64 MiB)


class MappedImage:
    """A 2-D image in an uncompressed contiguous TIFF (``image.tif``), read window by window.

    Supports ``image[r0:r1, c0:c1]`` (also with steps), ``shape``, ``dtype``, ``ndim``, ``size``:
    enough for ``txmorph.probmap.paint.paint_probabilities``, ``txmorph.patches.intensity`` and
    ``dask.array.from_array``.

    Parameters
    ----------
    path : str or os.PathLike
        The canonical image, as written by rule import_image.

    Raises
    ------
    ValueError
        If the file is not one uncompressed contiguous 2-D page.
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
        """The window ``[rows, cols]`` (slices, positive row step) as a new native-order array.

        Parameters
        ----------
        key : tuple of slice
            Rows and columns, as for a numpy array.

        Returns
        -------
        numpy.ndarray
            A copy of the window; at most ``BAND_BYTES`` of the file are mapped at any time.
        """
        rows, cols = key
        start, stop, step = rows.indices(self.shape[0])
        if step < 1:
            raise ValueError("MappedImage rows need a positive step")
        out = np.empty((len(range(start, stop, step)), len(range(*cols.indices(self.shape[1])))),
                       self.dtype.newbyteorder("="))
        # Map at most BAND_BYTES of the file at a time, even for a strided read of every row.
        row_bytes = self.shape[1] * self.dtype.itemsize
        per_band = max(1, BAND_BYTES // (row_bytes * step))
        for i, top in enumerate(range(start, stop, per_band * step)):
            part = self._read(top, min(stop, top + per_band * step), step, cols)
            out[i * per_band : i * per_band + len(part)] = part
        return out

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


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The whole canonical image ``image.tif`` in memory.

    Parameters
    ----------
    path : str or os.PathLike
        ``results/sections/{s}/image.tif``.

    Returns
    -------
    numpy.ndarray
        (H, W) in the image's dtype, native byte order.
    """
    image = MappedImage(path)
    return image[:, :]


def lazy_image(path: str | os.PathLike[str], chunks: int = 4096) -> Any:
    """The canonical image as a dask array, read chunk by chunk when computed (export).

    Parameters
    ----------
    path : str or os.PathLike
        ``results/sections/{s}/image.tif``.
    chunks : int
        Side of the dask chunks, in pixels.

    Returns
    -------
    dask.array.Array
        (H, W), never loaded whole.
    """
    import dask.array

    return dask.array.from_array(MappedImage(path), chunks=chunks)


def read_image_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The import summary ``image.json`` of a section's canonical image.

    Parameters
    ----------
    path : str or os.PathLike
        ``results/sections/{s}/image.json``.

    Returns
    -------
    dict
        Keys include ``shape``, ``source_shape``, ``level_scale``, ``pixel_size_um`` (of the
        canonical image), ``region``, ``downsample``.
    """
    return json.loads(open(path, encoding="utf-8").read())


def read_spots(path: str | os.PathLike[str], columns: Sequence[str] = ("gene", "x", "y")
               ) -> pd.DataFrame:
    """The canonical spot table ``spots.parquet``.

    Parameters
    ----------
    path : str or os.PathLike
        ``results/sections/{s}/spots.parquet``.
    columns : sequence of str
        Which of ``gene`` (text), ``x``, ``y`` (float64, pixels of ``image.tif``) to read.

    Returns
    -------
    pandas.DataFrame
        The columns asked for, in file order, with a default index.
    """
    return pd.read_parquet(path, columns=list(columns))


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A tissue mask (``masks/{s}.tif``, ``masks/{s}.dapi.tif``) on the image grid.

    Parameters
    ----------
    path : str or os.PathLike
        The mask, as written by rules dapi_mask and tissue_mask.

    Returns
    -------
    numpy.ndarray
        Boolean (H, W): True where there is tissue.
    """
    return tifffile.imread(path).astype(bool)


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Reference regions ``truth/{s}.tif`` (rule truth) on the image grid.

    Parameters
    ----------
    path : str or os.PathLike
        The label image.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W): 0 background, 1 tissue, 2 + i class i of ``groups``.
    """
    return tifffile.imread(path)


def spots_by_gene(spots: pd.DataFrame, genes: Sequence[str]) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each gene's spots.

    Parameters
    ----------
    spots : pandas.DataFrame
        A canonical spot table (``read_spots``).
    genes : sequence of str
        The genes, in the order wanted.

    Returns
    -------
    dict of str to numpy.ndarray
        Per gene, in the order of ``genes``, float64 (N, 2) ``(x, y)``.
    """
    return {
        gene: spots.loc[spots["gene"] == gene, ["x", "y"]].to_numpy(np.float64) for gene in genes
    }


def spots_by_class(
    spots: pd.DataFrame, groups: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each class's spots (the spots of all its genes).

    Parameters
    ----------
    spots : pandas.DataFrame
        A canonical spot table (``read_spots``).
    groups : Mapping of str to sequence of str
        ``{class name: [genes]}``; a single gene is ``{gene: [gene]}``.

    Returns
    -------
    dict of str to numpy.ndarray
        Per class, in the order of ``groups``, float64 (N, 2) ``(x, y)``.
    """
    return {
        name: spots.loc[spots["gene"].isin(list(genes)), ["x", "y"]].to_numpy(np.float64)
        for name, genes in groups.items()
    }
