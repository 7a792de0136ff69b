"""Look-ups that read a section's raw files while the workflow is parsed.

A file that cannot be read stops the run here, while the DAG is built and before any job runs,
with one line naming the section and the file (an ``InputError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from txmorph.errors import InputError

# The raw inputs of import_spots besides the table itself; their contents are its params.
SPOT_FILE_KEYS = ("spots", "transform", "fov_positions")


def raw_input_fingerprint(name: str, section: Mapping[str, Any], key: str) -> str | None:
    """The content fingerprint of a section's raw input ``key``, for the import rules' params.

    A changed file re-runs its import whatever its timestamp (``txmorph.io.fingerprint``;
    cached, so an unchanged file costs one stat).

    Parameters
    ----------
    name : str
        The section's name, for the message.
    section : Mapping
        Its config entry.
    key : str
        ``image``, ``spots``, ``transform`` or ``fov_positions``.

    Returns
    -------
    str or None
        The fingerprint; None when the key names no file (a transform matrix), or the file
        does not exist (yet): a rule may make it (the demo), else Snakemake reports the
        missing input.

    Raises
    ------
    InputError
        The file exists but cannot be read.
    """
    path = section.get(key)
    if not isinstance(path, str):
        return None
    from txmorph.io.fingerprint import cached_fingerprint
    from txmorph.scripting import unreadable_input_message

    try:
        return cached_fingerprint(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(unreadable_input_message(path, error, section=name, key=key)) from None


def spots_fingerprints(name: str, section: Mapping[str, Any]) -> dict[str, str | None]:
    """Fingerprints of the spot table and of its side files (transform, fov_positions)."""
    return {key: raw_input_fingerprint(name, section, key)
            for key in SPOT_FILE_KEYS if isinstance(section.get(key), str)}


def pixel_size_of(name: str, section: Mapping[str, Any]) -> float:
    """µm per pixel of a section's image as read: the config's, else the image's OME metadata.

    Parameters
    ----------
    name : str
        The section's name.
    section : Mapping
        Its config entry.

    Returns
    -------
    float
        ``pixel_size_um`` of the config, else the image's PhysicalSizeX at its ``level``.

    Raises
    ------
    InputError
        No pixel size in the config and the image is missing, unreadable or records none.
    """
    if section.get("pixel_size_um"):
        return section["pixel_size_um"]
    from txmorph.io.images import open_image

    fix = f"set 'pixel_size_um' for section '{name}' in config.yaml"
    if not Path(section["image"]).is_file():
        raise InputError(f"section '{name}': image {section['image']} not found; {fix}")
    raw_input_fingerprint(name, section, "image")  # an unreadable image: say so, not "corrupt"
    with open_image(section["image"], level=section.get("level", 0),
                    channel=section.get("channel"),
                    z_projection=section.get("z_projection", "max")) as image:
        found = image.pixel_size_um
    if not found:
        raise InputError(
            f"section '{name}': the image {section['image']} does not record its pixel size "
            f"(no OME PhysicalSizeX); {fix}"
        )
    return found
