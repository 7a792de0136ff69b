"""Window-by-window reading of the planes of a TIFF series (for ``txmorph.io.images``).

A window decodes only the tiles/strips it intersects (tifffile's per-segment decoder, bytes
read under a lock shared by the planes of one file); uncompressed contiguous data is
memory-mapped; a layout that cannot be mapped to pages is read whole. The last decoded segment
is cached, so streaming a compressed page stored as one strip decodes it once.

Why not tifffile's zarr interface (``TiffFile.aszarr()``): see ``txmorph.io.images``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

JPEG_COMPRESSIONS = {6, 7, 33007, 34892}


def decode_segment(page: Any, data: bytes, index: int) -> tuple:
    """tifffile's decoding of one tile/strip (a module function, so that tests can count calls).

    Parameters
    ----------
    page : tifffile.TiffPage
        The page the segment belongs to.
    data : bytes
        The segment's bytes as stored.
    index : int
        The segment's index in the page.

    Returns
    -------
    tuple
        tifffile's ``(data, indices, shape)`` of the decoded segment.
    """
    key = page.keyframe
    jpeg = key.compression in JPEG_COMPRESSIONS
    kwargs = {"jpegtables": page.jpegtables, "jpegheader": key.jpegheader} if jpeg else {}
    return key.decode(data, index, **kwargs)


class SegmentPlane:
    """A plane of a tiled or striped TIFF page: ``plane[r0:r1, c0:c1]`` decodes only the
    segments that the window meets. (Other planes are arrays: memory maps or in memory.)

    Parameters
    ----------
    page : tifffile.TiffPage
        The page.
    sep, depth, contig : int
        The plane's position along the page's separate-sample, depth and contiguous-sample axes.
    lock : threading.Lock
        Held while reading the file's bytes (shared by the planes of one file).
    """

    def __init__(self, page: Any, sep: int, depth: int, contig: int, lock: threading.Lock) -> None:
        self.page, self.key, self.lock = page, page.keyframe, lock
        self.sep, self.depth, self.contig = sep, depth, contig
        self.cache: tuple[int, Any] | None = None  # the last decoded segment

    def _indices(self, r0: int, r1: int, c0: int, c1: int) -> list[int]:
        key = self.key
        _, depth, length, width, _ = key.shaped
        if key.is_tiled:
            tl, tw, td = key.tilelength, key.tilewidth, max(1, key.tiledepth)
            nty, ntx = math.ceil(length / tl), math.ceil(width / tw)
            base = (self.sep * math.ceil(depth / td) + self.depth // td) * nty * ntx
            return [base + ty * ntx + tx for ty in range(r0 // tl, (r1 - 1) // tl + 1)
                    for tx in range(c0 // tw, (c1 - 1) // tw + 1)]
        rps = key.rowsperstrip or length
        base = (self.sep * depth + self.depth) * math.ceil(length / rps)
        return list(range(base + r0 // rps, base + (r1 - 1) // rps + 1))

    def _segment(self, index: int) -> Any:
        cache = self.cache  # one read of the attribute: safe if threads share the plane
        if cache is not None and cache[0] == index:
            return cache[1]
        offsets, counts = self.page.dataoffsets, self.page.databytecounts
        if index >= len(offsets):
            raise ValueError(f"segment {index} is missing ({len(offsets)} in the page)")
        if not counts[index]:
            return None  # an empty segment reads as nodata
        handle = self.page.parent.filehandle
        with self.lock:
            handle.seek(offsets[index])
            data = handle.read(counts[index])
        if len(data) != counts[index]:
            raise ValueError(f"the file ends inside segment {index} (truncated file)")
        segment = decode_segment(self.page, data, index)
        self.cache = (index, segment)
        return segment

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        (r0, r1), (c0, c1) = (key[0].start, key[0].stop), (key[1].start, key[1].stop)
        out = np.full((r1 - r0, c1 - c0), self.key.nodata, self.key.dtype.newbyteorder("="))
        for index in self._indices(r0, r1, c0, c1) if out.size else []:
            segment = self._segment(index)
            if segment is None or segment[0] is None:
                continue
            data, (_, d0, y0, x0, _), _ = segment
            ry0, ry1 = max(r0, y0), min(r1, y0 + data.shape[1])
            cx0, cx1 = max(c0, x0), min(c1, x0 + data.shape[2])
            if ry0 < ry1 and cx0 < cx1:
                out[ry0 - r0 : ry1 - r0, cx0 - c0 : cx1 - c0] = data[
                    self.depth - d0, ry0 - y0 : ry1 - y0, cx0 - x0 : cx1 - x0, self.contig]
        return out


Plane = Any  # np.ndarray (memory map or in memory) or SegmentPlane, indexed [r0:r1, c0:c1]


def view(array: np.ndarray, axes: str, index: list[int]) -> np.ndarray:
    """The 2-D (Y, X) view of an n-D array at one position of its other axes.

    Parameters
    ----------
    array : numpy.ndarray
        The series (or a memory map of it).
    axes : str
        Its axes, tifffile's letters (e.g. "CYX").
    index : list of int
        One int per axis; those of Y and X are ignored.

    Returns
    -------
    numpy.ndarray
        The (Y, X) plane, a view (transposed if X comes before Y).
    """
    view = array[tuple(slice(None) if a in "YX" else i for a, i in zip(axes, index))]
    return view if axes.index("Y") < axes.index("X") else view.T


def tiff_planes(p: Path, tif: Any, series: Any, lock: threading.Lock) -> tuple[Callable, str]:
    """How to read the planes of a TIFF series window by window.

    Parameters
    ----------
    p : Path
        The file.
    tif : tifffile.TiffFile
        It, open.
    series : tifffile.TiffPageSeries
        The series at the chosen level.
    lock : threading.Lock
        Shared by the planes of the file, around its reads.

    Returns
    -------
    tuple of (callable, str)
        ``make(index) -> plane`` (index: one int per axis of the series; the plane is indexed
        ``[r0:r1, c0:c1]``) and how it reads ("memory-mapped", "tiles/strips decoded on demand",
        "read whole (unusual layout)").
    """
    axes, shape = series.axes, tuple(series.shape)
    if series.transform is None and not series.is_multifile and series.dataoffset is not None:
        mm = np.memmap(p, series.dtype.newbyteorder(tif.byteorder), "r", series.dataoffset, shape)
        return (lambda index: view(mm, axes, index)), "memory-mapped"
    shaped = series.keyframe.shaped  # (separate samples, depth, rows, cols, contiguous samples)
    dims = [d for d in range(5) if shaped[d] > 1 or d in (2, 3)]
    k = len(shape) - len(dims)
    if (k >= 0 and shape[k:] == tuple(shaped[d] for d in dims) and math.prod(shape[:k]) == len(series)
            and axes[k + dims.index(2)] == "Y" and axes[k + dims.index(3)] == "X"):

        def make(index: list[int]) -> Plane:  # leading axes number the pages, the rest is in one
            page = series[int(np.ravel_multi_index(index[:k], shape[:k])) if k else 0]
            pos = dict(zip(dims, index[k:]))
            return _page_plane(page, pos.get(0, 0), pos.get(1, 0), pos.get(4, 0), lock, series)

        return make, "tiles/strips decoded on demand"
    full = series.asarray()
    return (lambda index: view(full, axes, index)), "read whole (unusual layout)"


def _page_plane(page: Any, sep: int, depth: int, contig: int, lock: threading.Lock,
                series: Any) -> Plane:
    if page is None:  # a page missing from the file reads as zeros, as in tifffile
        return np.broadcast_to(np.zeros((), series.dtype), series.keyframe.shaped[2:4])
    key, offsets, counts = page.keyframe, page.dataoffsets, page.databytecounts
    if (key.is_final and page.parent.filehandle.is_file and sum(counts) == key.nbytes
            and all(offsets[i] + counts[i] == offsets[i + 1] for i in range(len(offsets) - 1))):
        dtype = key.dtype.newbyteorder(page.parent.byteorder)
        mm = np.memmap(page.parent.filehandle.path, dtype, "r", offsets[0], key.shaped)
        return mm[sep, depth, :, :, contig]
    return SegmentPlane(page, sep, depth, contig, lock)

