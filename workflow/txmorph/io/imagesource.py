"""``ImageSource``: one 2-D plane of a nuclei image, read window by window (made by
``txmorph.io.images.open_image`` and ``txmorph.io.spatialdata.open_spatialdata_image``).

A window of a projected z-stack is the maximum of the planes' windows; grey stored as RGB is
checked on every read (the twin channels must equal the first). Decoder failures become one
``InputError`` for the user (``failing_as``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from txmorph.errors import InputError
from txmorph.io.tiffplanes import Plane, SegmentPlane

BAND_PIXELS = 1 << 22  # pixels per band of strided reads and of the grey-RGB probe


class ImageSource:
    """One 2-D plane of a nuclei image, read lazily by window; also a context manager.

    Attributes: ``path``, ``shape`` (rows, cols at the chosen level), ``dtype`` (native byte
    order), ``pixel_size_um`` (None when unknown), ``description`` (one line), ``level``,
    ``channel`` (index or None), ``channel_name``, ``projection`` ("max" or None), ``z_planes``.
    Made by ``open_image`` (and ``txmorph.io.spatialdata.open_spatialdata_image``).

    Parameters
    ----------
    path : Path
        The file.
    shape : tuple of int
        (rows, cols) of the plane.
    dtype : numpy.dtype
        Its pixel type.
    planes : list of (plane, list of plane)
        Per z-plane: the plane read, and the twin channels that must equal it (grey as RGB).
    pixel_size_um : float or None
        From the metadata.
    description : str
        One line for the log.
    level : int
        The pyramid level.
    channel : int or None
        The chosen channel's index.
    channel_name : str or None
        Its name.
    closer : callable or None
        Closes the file.
    """

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype,
                 planes: list[tuple[Plane, list[Plane]]], *, pixel_size_um: float | None,
                 description: str, level: int, channel: int | None, channel_name: str | None,
                 closer: Callable[[], None] | None = None) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype).newbyteorder("=")
        self.pixel_size_um, self.description, self.level = pixel_size_um, description, level
        self.channel, self.channel_name, self.z_planes = channel, channel_name, len(planes)
        self.projection = "max" if len(planes) > 1 else None
        self._planes, self._closer = planes, closer

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; later reads raise ValueError."""
        self._planes = []
        if self._closer is not None:
            self._closer()
            self._closer = None

    def _window(self, plane: Plane, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        with failing_as(f"image file '{self.path}'", "decoded"):  # a corrupt or truncated segment
            window = plane[r0:r1, c0:c1]
            return window if isinstance(plane, SegmentPlane) else np.array(window, self.dtype)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The window ``[rows, cols]`` as a new array.

        Parameters
        ----------
        rows, cols : slice
            ``start:stop`` with step 1, clipped like numpy.

        Returns
        -------
        numpy.ndarray
            The window in the plane's dtype (the maximum over z for a projected stack).

        Raises
        ------
        InputError
            If the file cannot be decoded there, or grey stored as RGB turns out to be colour.
        """
        if not self._planes:
            raise ValueError(f"{self.path}: the image is closed")
        (r0, r1), (c0, c1) = _bounds(rows, self.shape[0]), _bounds(cols, self.shape[1])
        out: np.ndarray | None = None
        for main, twins in self._planes:
            block = self._window(main, r0, r1, c0, c1)
            if any(not np.array_equal(block, self._window(t, r0, r1, c0, c1)) for t in twins):
                raise InputError(_colour_message(f"image file '{self.path}'", r0))
            out = block if out is None else np.maximum(out, block, out=out)
        return out  # type: ignore[return-value]

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        """``image[r0:r1, c0:c1]``; strided ``image[::k, ::k]`` is read band by band."""
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise TypeError("index an ImageSource with two slices, e.g. image[0:100, ::4]")
        if (rows.step or 1) < 1 or (cols.step or 1) < 1:
            raise ValueError("only positive slice steps are supported")
        rows, cols = range(*rows.indices(self.shape[0])), range(*cols.indices(self.shape[1]))
        if rows.step == 1 and cols.step == 1:
            return self.read(slice(rows.start, rows.stop), slice(cols.start, cols.stop))
        out = np.empty((len(rows), len(cols)), self.dtype)
        if not out.size:
            return out
        per_band = (max(1, BAND_PIXELS // (cols[-1] + 1 - cols.start)) - 1) // rows.step + 1
        for i in range(0, len(rows), per_band):  # memory: one band + the result
            j = min(len(rows), i + per_band)
            band = self.read(slice(rows[i], rows[j - 1] + 1), slice(cols.start, cols[-1] + 1))
            out[i:j] = band[:: rows.step, :: cols.step]
        return out

    def iter_strips(self, rows_per_strip: int) -> Iterator[tuple[int, np.ndarray]]:
        """Consecutive full-width strips of the plane.

        Parameters
        ----------
        rows_per_strip : int
            Rows per strip (the last may be shorter).

        Yields
        ------
        tuple of (int, numpy.ndarray)
            The strip's first row and its pixels.
        """
        if rows_per_strip < 1:
            raise ValueError("rows_per_strip must be >= 1")
        for top in range(0, self.shape[0], rows_per_strip):
            yield top, self.read(slice(top, top + rows_per_strip), slice(None))


def _bounds(s: slice, n: int) -> tuple[int, int]:
    if not isinstance(s, slice) or s.step not in (None, 1):
        raise ValueError(f"read() takes start:stop slices with step 1, not {s!r}")
    start, stop, _ = s.indices(n)
    return start, max(start, stop)


@contextlib.contextmanager
def failing_as(where: str, what: str, cleanup: Callable[[], None] | None = None) -> Iterator[None]:
    """Turn a decoder's failure into one InputError for the user (``cleanup`` runs on any error)."""
    try:
        yield
    except BaseException as error:
        if cleanup is not None:
            cleanup()
        if isinstance(error, (InputError, MemoryError)) or not isinstance(error, Exception):
            raise
        raise InputError(f"{where}: could not be {what} ({type(error).__name__}: {error}). The "
                         "file may be incomplete or corrupt; re-export or re-copy it.") from error


def _colour_message(where: str, row: int) -> str:
    return (f"{where}: an RGB colour image (the channels differ near row {row}) where a "
            "single-channel grey nuclei image is expected. Set 'channel' for this section in "
            "config.yaml (0 red, 1 green, 2 blue), or export the DAPI channel alone as a "
            "grey-scale TIFF (Fiji: Image > Color > Split Channels).")
