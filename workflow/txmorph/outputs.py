"""Writing outputs so that an interrupted job never leaves a file that looks complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_label_tiff(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a 2-D uint8 label/mask image as a compressed TIFF, atomically."""
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.uint8), compression="zlib")
