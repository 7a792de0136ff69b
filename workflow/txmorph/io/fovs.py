"""CosMx FOV positions: FOV-local pixel coordinates -> pixels of the slide.

Each spot is shifted by its FOV's offset from the ``fov_positions`` file (pixels, or millimetres
converted with pixel_size_um * image_scale); see ``txmorph.io.coordinates`` for the other routes
from spot coordinates to image pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.coordinates import Coordinates, config_error
from txmorph.io.files import bad_rows, describe_row, existing_file, is_blank, unreadable
from txmorph.io.tables import numeric_column, text_options


def place_fovs(
    spots: pd.DataFrame, fov: pd.Series, p: Path, fov_positions: Any, coords: Coordinates,
    where: str,
) -> tuple[pd.DataFrame, str]:
    """FOV-local pixels -> pixels of the slide (CosMx ``x_global_px`` frame; before image_scale).

    Each spot is shifted by its FOV's offset read from the ``fov_positions`` file (pixels, or
    millimetres converted with pixel_size_um * image_scale).

    Parameters
    ----------
    spots : pandas.DataFrame
        FOV-local ``x``, ``y``.
    fov : pandas.Series
        Each spot's FOV id (same index as ``spots``).
    p : Path
        The spots file, for messages.
    fov_positions : Any
        The config's ``fov_positions`` path.
    coords : Coordinates
        The section's settings.
    where : str
        How messages name the spots file.

    Returns
    -------
    tuple of (pandas.DataFrame, str)
        The table in slide pixels, and how it was done.

    Raises
    ------
    InputError
        For a FOV missing from the positions file, naming its first line.
    """
    offsets, source = _fov_offsets(fov_positions, coords, where)
    fov = _fov_keys(fov, p, where)
    known = fov.isin(offsets.index).to_numpy()
    if not known.all():
        first = int(np.flatnonzero(~known)[0])
        missing = pd.unique(fov[~known])
        raise InputError(
            f"{where}: fov {missing[0]}, first at "
            f"{describe_row(p, int(spots.index[first]))}, "
            f"is not in the FOV positions file '{fov_positions}'"
            + (f"; {len(missing)} fovs are missing: {', '.join(map(str, missing[:10]))}"
               f"{' ...' if len(missing) > 10 else ''}" if len(missing) > 1 else "")
            + f" ({int((~known).sum())} transcripts). Use the positions file of the same "
            "slide and export."
        )
    dx = offsets["x"].reindex(fov.to_numpy()).to_numpy()
    dy = offsets["y"].reindex(fov.to_numpy()).to_numpy()
    spots = spots.assign(x=spots["x"].to_numpy() + dx, y=spots["y"].to_numpy() + dy)
    return spots, f"x_local_px/y_local_px + FOV offsets from {source}"


def _fov_keys(fov: pd.Series, p: Path, where: str) -> pd.Series:
    """FOV ids as comparable text: integral numbers as '12' (not '12.0'), else stripped text."""
    numbers = pd.to_numeric(fov, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0):
        return numbers.astype(np.int64).astype(str)
    text = fov.astype(str).str.strip()
    if (bad := is_blank(fov) | (text == "").to_numpy(dtype=bool)).any():
        raise bad_rows(where, "fov", p, fov.index[bad], "the fov is empty", "Fix or remove")
    return text


def _fov_offsets(
    fov_positions: Any, coords: Coordinates, where: str
) -> tuple[pd.DataFrame, str]:
    """Offsets (columns x, y: CosMx pixels before image_scale) indexed by FOV id."""
    fw = f"FOV positions file '{fov_positions}' (of the section with {where})"
    p = existing_file(fov_positions, fw, "fov_positions")
    try:
        table = pd.read_csv(p, **text_options(p, fw))
    except (pd.errors.ParserError, OSError, EOFError, pd.errors.EmptyDataError) as error:
        raise unreadable(fw, error) from error
    by_lower = {str(c).strip().lower(): c for c in table.columns}
    present = ", ".join(map(repr, map(str, table.columns)))
    if "fov" not in by_lower:
        raise InputError(
            f"{fw}: no 'fov' column. Expected the CosMx *_fov_positions_file.csv columns fov, "
            f"x_global_px, y_global_px (or X_mm, Y_mm); the file has: {present}."
        )
    if {"x_global_px", "y_global_px"} <= by_lower.keys():
        cx, cy, factor = by_lower["x_global_px"], by_lower["y_global_px"], 1.0
        source = f"'{p}' (x_global_px, y_global_px)"
    else:
        mm = next(((a, b) for a, b in (("x_mm", "y_mm"), ("x_global_mm", "y_global_mm"))
                   if {a, b} <= by_lower.keys()), None)
        if mm is None:
            raise InputError(
                f"{fw}: no FOV position columns. Expected x_global_px, y_global_px (pixels) or "
                f"X_mm, Y_mm (millimetres); the file has: {present}."
            )
        if coords.pixel_size_um is None:
            raise config_error(
                where, f"the FOV positions in '{p}' are millimetres; converting them to pixels "
                f"needs 'pixel_size_um' > 0, which is {coords.pixel_size_raw!r}."
            )
        # pixel_size_um is per pixel of the image as read: one CosMx pixel is
        # pixel_size_um * image_scale micrometres.
        cx, cy = by_lower[mm[0]], by_lower[mm[1]]
        factor = 1000.0 / (coords.pixel_size_um * coords.image_scale)
        source = f"'{p}' ({cx}, {cy} in mm / pixel_size_um {coords.pixel_size_um:g})"
    fov = _fov_keys(table[by_lower["fov"]], p, fw)
    if (dup := fov.duplicated(keep=False)).any():
        lines = [describe_row(p, int(i)) for i in fov.index[dup][:2]]
        raise InputError(
            f"{fw}: fov {fov[dup].iloc[0]} appears more than once ({' and '.join(lines)}). If the "
            "file covers several slides, keep only the rows of this section's slide."
        )
    offsets = {}
    for key, column in (("x", cx), ("y", cy)):
        offsets[key] = numeric_column(table, column, p, fw) * factor
    return pd.DataFrame(offsets, index=pd.Index(fov.to_numpy())), source
