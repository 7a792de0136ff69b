"""Writing outputs so that an interrupted job never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile


TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name keeps the final suffix (writers such as pandas choose the format by
    it). With ``durable``, the data is flushed to disk before the rename, so that a crash of
    the machine cannot leave a complete-looking name over incomplete data.

    Parameters
    ----------
    path : str or os.PathLike
        The final path; its parent folder is created.
    durable : bool
        Flush the file to disk (fsync) before the rename.

    Yields
    ------
    Path
        The temporary path to write to; removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TEMPORARY_PREFIX}{os.getpid()}-{path.name}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_label_tiff(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a 2-D uint8 label/mask image as a compressed TIFF, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The TIFF to write.
    labels : np.ndarray
        2-D labels or mask; stored as uint8 (zlib).
    """
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.uint8), compression="zlib")
