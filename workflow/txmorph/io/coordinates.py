"""How spot coordinates become pixels of the image as read.

A section's spots come in micrometres (Xenium, MERSCOPE, ``table`` with ``units: um``) or in
pixels of some frame (CosMx, ``table`` with ``units: px``). This module turns them into image
pixels (``x`` = column, ``y`` = row) from the section's config keys:

* pixel size + origin: ``pixel = (um - origin_um) / pixel_size_um``. ``pixel_size_um`` is the
  micrometres per pixel of the image *as read*, so it already includes any downsampling.
* affine transform: a ``transform`` (3x3 affine, um -> pixels of the frame it was made for, from
  a file such as MERSCOPE's ``micron_to_mosaic_pixel_transform.csv`` or inline as a 2x3/3x3 list)
  gives ``pixel = image_scale * (A @ [x_um, y_um, 1])``; a ``pixel_size_um`` given with it must
  agree with the scale the transform implies (within ``PIXEL_SIZE_RTOL``).
* ``image_scale``: pixels of the image as read per pixel of the coordinates' frame (e.g. 0.25
  for an image downsampled by 4). It multiplies pixel coordinates and transformed micrometres;
  it does not apply to the pixel-size route and is refused there rather than applied twice.
* CosMx FOV positions: FOV-local pixels are shifted by their FOV's offset from the
  ``fov_positions`` file: ``txmorph.io.fovs``.

Every problem the user can fix is an ``InputError`` naming the config section or file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from txmorph.errors import InputError
from txmorph.io.files import existing_file, unreadable

UNITS = ("px", "um")
UNIT_ALIASES = {"px": "px", "pixel": "px", "pixels": "px", "um": "um", "µm": "um", "μm": "um"}
TRANSFORM_ATOL = 1e-6  # tolerance on the last row (0, 0, 1) of an affine matrix
MAX_CONDITION = 1e12  # a transform's 2x2 part with a larger condition number counts as singular
PIXEL_SIZE_RTOL = 0.10  # allowed mismatch of pixel_size_um and the one a transform implies


@dataclass(frozen=True)
class Coordinates:
    """A section's settings for turning its spot coordinates into pixels of its image."""

    pixel_size_um: float | None  # None: not given (or not a positive number, see pixel_size_raw)
    pixel_size_raw: Any  # pixel_size_um as given, for messages
    origin_um: tuple[float, float]  # micrometre position of the image's pixel (0, 0) corner
    transform: Any  # None, a path or an inline matrix (parsed by read_transform)
    image_scale: float  # pixels of the image as read per pixel of the coordinates' frame


# ----------------------------------------------------------------------------- options


def config_error(where: str, text: str) -> InputError:
    """An ``InputError`` about the config block of the section whose spots are ``where``.

    Parameters
    ----------
    where : str
        How messages name the spots file.
    text : str
        What is wrong and what to do.

    Returns
    -------
    InputError
        To be raised by the caller.
    """
    return InputError(f"config.yaml, section with {where}: {text}")


def finite_number(value: Any) -> float | None:
    """A config value as a finite float.

    Parameters
    ----------
    value : Any
        The value.

    Returns
    -------
    float or None
        The number, or None when it is not a finite number (bools are not numbers).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_units(units: Any, where: str) -> str | None:
    """The ``units`` option.

    Parameters
    ----------
    units : Any
        As configured: 'px' or 'um' (aliases such as 'pixels', 'µm' accepted), or None.
    where : str
        How messages name the spots file.

    Returns
    -------
    str or None
        'px' or 'um'; None when not given.

    Raises
    ------
    InputError
        For any other value.
    """
    if units is None:
        return None
    if (key := str(units).strip().lower()) not in UNIT_ALIASES:
        raise config_error(
            where, f"'units' is {units!r}; use one of {', '.join(UNITS)} (pixels of the image, "
            "or micrometres, converted with pixel_size_um or a transform)."
        )
    return UNIT_ALIASES[key]


def parse_coordinates(options: Mapping[str, Any], where: str) -> Coordinates:
    """The coordinate keys of a section's config block.

    origin_um and image_scale are checked here, the rest where they are used.

    Parameters
    ----------
    options : Mapping
        The section's ``read_spot_table`` options (pixel_size_um, origin_um, transform,
        image_scale).
    where : str
        How messages name the spots file.

    Returns
    -------
    Coordinates
        The settings.
    """
    raw_size = options.get("pixel_size_um")
    size = finite_number(raw_size)
    origin = options.get("origin_um")
    if origin is None:
        origin_xy = (0.0, 0.0)
    else:
        values = [finite_number(v) for v in origin] if isinstance(
            origin, Sequence) and not isinstance(origin, str) else []
        if len(values) != 2 or any(v is None for v in values):
            raise config_error(
                where, f"'origin_um' is {origin!r}; give two finite numbers [x0, y0]: the "
                "micrometre position of the image's pixel (0, 0) corner."
            )
        origin_xy = (float(values[0]), float(values[1]))
    scale_raw = options.get("image_scale")
    scale = 1.0 if scale_raw is None else finite_number(scale_raw)
    if scale is None or scale <= 0:
        raise config_error(
            where, f"'image_scale' is {scale_raw!r}; give a positive number: pixels of the image "
            "as read per pixel of the coordinates (e.g. 0.25 for an image downsampled by 4)."
        )
    return Coordinates(
        pixel_size_um=size if size is not None and size > 0 else None, pixel_size_raw=raw_size,
        origin_um=origin_xy, transform=options.get("transform"), image_scale=scale,
    )


# ----------------------------------------------------------------------------- conversion


def um_to_pixels(spots: pd.DataFrame, coords: Coordinates, where: str) -> tuple[pd.DataFrame, str]:
    """Micrometres -> pixels of the image as read.

    Uses the transform when given (then times image_scale), else
    ``(um - origin_um) / pixel_size_um``.

    Parameters
    ----------
    spots : pandas.DataFrame
        Micrometre columns ``x``, ``y`` (other columns and the index are kept).
    coords : Coordinates
        The section's settings.
    where : str
        How messages name the spots file.

    Returns
    -------
    tuple of (pandas.DataFrame, str)
        The table in image pixels, and how it was done (for the log).
    """
    if coords.transform is not None:
        if coords.origin_um != (0.0, 0.0):
            raise config_error(
                where, f"'origin_um' {list(coords.origin_um)} and a 'transform' are both given; "
                "the transform already contains the offset. Remove 'origin_um'."
            )
        matrix, source = read_transform(coords.transform, where)
        check_pixel_size(matrix, coords, source, where)
        x, y = spots["x"].to_numpy(), spots["y"].to_numpy()
        px = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) * coords.image_scale
        py = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) * coords.image_scale
        rows = "; ".join(" ".join(f"{v:.6g}" for v in row) for row in matrix[:2])
        how = f"um -> px by the affine transform {source} [{rows}]"
        how += f" x image_scale {coords.image_scale:g}" if coords.image_scale != 1 else ""
        return spots.assign(x=px, y=py), how
    if coords.pixel_size_um is None:
        raise config_error(
            where, f"the coordinates are micrometres but 'pixel_size_um' is "
            f"{coords.pixel_size_raw!r}; set it to the micrometres per pixel of the image as read "
            "(e.g. 0.2125 for a full-resolution Xenium morphology image), or give a 'transform'."
        )
    if coords.image_scale != 1:
        raise config_error(
            where, f"'image_scale' {coords.image_scale:g} does not apply when micrometres are "
            "converted with 'pixel_size_um', which is already the micrometres per pixel of the "
            f"image as read (e.g. {coords.pixel_size_um:g} / {coords.image_scale:g} = "
            f"{coords.pixel_size_um / coords.image_scale:g} if pixel_size_um is that of the full "
            "resolution). Remove 'image_scale' and set pixel_size_um accordingly, or give a "
            "'transform' for image_scale to act on."
        )
    x0, y0 = coords.origin_um
    px = (spots["x"].to_numpy() - x0) / coords.pixel_size_um
    py = (spots["y"].to_numpy() - y0) / coords.pixel_size_um
    how = f"um -> px: (um - origin ({x0:g}, {y0:g})) / pixel_size_um {coords.pixel_size_um:g}"
    return spots.assign(x=px, y=py), how


def scale_pixels(
    spots: pd.DataFrame, coords: Coordinates, where: str, what: str
) -> tuple[pd.DataFrame, str]:
    """Pixel coordinates -> pixels of the image as read (only image_scale applies).

    A transform or an origin_um is refused: they concern micrometres.

    Parameters
    ----------
    spots : pandas.DataFrame
        Pixel columns ``x``, ``y``.
    coords : Coordinates
        The section's settings.
    where : str
        How messages name the spots file.
    what : str
        Names the pixel coordinates in messages (e.g. "CosMx coordinates").

    Returns
    -------
    tuple of (pandas.DataFrame, str)
        The table in image pixels, and how it was done.
    """
    if coords.transform is not None:
        raise config_error(
            where, f"a 'transform' maps micrometres to pixels, but {what} are already pixels. "
            "Remove 'transform' (use 'image_scale' if the image is downsampled)."
        )
    if coords.origin_um != (0.0, 0.0):
        raise config_error(
            where, f"'origin_um' {list(coords.origin_um)} applies to micrometre coordinates, but "
            f"{what} are pixels. Remove 'origin_um'."
        )
    if coords.image_scale == 1:
        return spots, "pixels as given"
    return (
        spots.assign(x=spots["x"].to_numpy() * coords.image_scale,
                     y=spots["y"].to_numpy() * coords.image_scale),
        f"pixels x image_scale {coords.image_scale:g}",
    )


def check_pixel_size(matrix: np.ndarray, coords: Coordinates, source: str, where: str) -> None:
    """Refuse a pixel_size_um that disagrees with ``matrix`` (by more than PIXEL_SIZE_RTOL).

    pixel_size_um is used for every micrometre setting downstream, so it must match the scale
    the transform (times image_scale) implies.

    Parameters
    ----------
    matrix : numpy.ndarray
        The 3x3 affine micrometres -> pixels.
    coords : Coordinates
        The section's settings.
    source : str
        Names the transform in messages.
    where : str
        How messages name the spots file.
    """
    if coords.pixel_size_um is None:
        return
    per_um = math.sqrt(abs(float(np.linalg.det(matrix[:2, :2])))) * coords.image_scale
    implied = 1.0 / per_um
    if abs(coords.pixel_size_um / implied - 1.0) > PIXEL_SIZE_RTOL:
        raise config_error(
            where, f"the transform {source} with image_scale {coords.image_scale:g} makes "
            f"{per_um:.6g} pixels of the image per micrometre, i.e. {implied:.6g} um per pixel, "
            f"but 'pixel_size_um' is {coords.pixel_size_um:g}. Set pixel_size_um to {implied:.6g} "
            "(other micrometre settings use it), or check the transform file and image_scale "
            "(e.g. 0.25 if the image is the mosaic downsampled by 4)."
        )


def read_transform(value: Any, where: str) -> tuple[np.ndarray, str]:
    """The 3x3 affine matrix from a file path or an inline 2x3/3x3 list.

    The file holds 3 rows of 3 numbers (spaces, commas or semicolons; '#' comments allowed).
    The matrix must be finite, end in the row 0 0 1 and be invertible.

    Parameters
    ----------
    value : Any
        The config's ``transform``: a path or a list of rows.
    where : str
        How messages name the spots file.

    Returns
    -------
    tuple of (numpy.ndarray, str)
        The matrix, and its source ("file '...'" or "given inline") for the log.
    """
    if isinstance(value, (str, PathLike)):
        source = f"file '{value}'"
        tw = f"transform file '{value}' (of the section with {where})"
        p = existing_file(value, tw, "transform")
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise unreadable(tw, error) from error
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not (line := line.strip()) or line.startswith("#"):
                continue
            fields = [f for f in re.split(r"[\s,;]+", line) if f]
            try:
                rows.append([float(f) for f in fields])
            except ValueError:
                bad = next(f for f in fields if not _is_float(f))
                raise InputError(
                    f"{tw}: line {number}: {bad!r} is not a number. The file must hold 3 rows of "
                    "3 numbers separated by spaces or commas (e.g. MERSCOPE's "
                    "micron_to_mosaic_pixel_transform.csv), nothing else."
                ) from None
        shape = sorted({len(r) for r in rows})
        if len(rows) != 3 or shape != [3]:
            found = f"{len(rows)} row{'s' if len(rows) != 1 else ''}" + (
                f" of {'/'.join(map(str, shape))} numbers" if rows else ""
            )
            raise InputError(
                f"{tw}: expected a 3x3 affine matrix (3 rows of 3 numbers, as in MERSCOPE's "
                f"micron_to_mosaic_pixel_transform.csv), found {found}."
            )
        matrix = np.asarray(rows, dtype=np.float64)
    else:
        source = "given inline"
        tw = f"config.yaml, section with {where}: the inline 'transform'"
        value = value.tolist() if isinstance(value, np.ndarray) else value
        listed = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
        rows = value if listed else None
        ok = rows is not None and all(
            isinstance(r, Sequence) and not isinstance(r, (str, bytes)) for r in rows
        )
        numbers = [[finite_number(v) for v in r] for r in rows] if ok else []
        ok = ok and len(numbers) in (2, 3) and all(len(r) == 3 for r in numbers)
        if not ok or any(v is None for r in numbers for v in r):
            raise InputError(
                f"{tw} is {value!r}; give a 2x3 or 3x3 matrix of finite numbers (a list of rows) "
                "mapping micrometres to pixels, or the path of a transform file."
            )
        if len(numbers) == 2:
            numbers.append([0.0, 0.0, 1.0])
        matrix = np.asarray(numbers, dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise InputError(f"{tw}: contains non-finite numbers (nan/inf). Re-export the transform.")
    if not np.allclose(matrix[2], (0.0, 0.0, 1.0), rtol=0, atol=TRANSFORM_ATOL):
        raise InputError(
            f"{tw}: the last row is {' '.join(f'{v:g}' for v in matrix[2])}, but an affine "
            "transform's last row must be 0 0 1. Is it the right file (not transposed)?"
        )
    if not np.isfinite(cond := np.linalg.cond(matrix[:2, :2])) or cond > MAX_CONDITION:
        raise InputError(
            f"{tw}: the matrix is singular (not invertible): it would map the spots onto a line "
            "or a point. Check the transform."
        )
    return matrix, source


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
