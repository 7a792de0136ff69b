"""What each section role needs, checked before any job (config.yaml and sample sheets alike).

``train`` sections give the patches and ``test`` sections are scored: both need a spot table.
``predict`` sections only get maps: an image and no spots (their tissue mask comes from DAPI);
a spot table named for one is not used, but a path that does not exist is still a mistake
worth stopping for (a typo, or a sheet pointing at the wrong folder).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TRAIN, TEST, PREDICT = "train", "test", "predict"
ROLES = (TRAIN, TEST, PREDICT)
ROLES_WITH_SPOTS = (TRAIN, TEST)


def uses_spots(section: Mapping[str, Any]) -> bool:
    """Whether the pipeline reads this section's spot table (train and test sections).

    Parameters
    ----------
    section : Mapping[str, Any]
        The section's config entry (``role`` at least).

    Returns
    -------
    bool
        True for train and test sections, False for predict sections.
    """
    return section.get("role") in ROLES_WITH_SPOTS


def spots_problem(name: str, section: Mapping[str, Any],
                  exists: Callable[[str], bool] = lambda path: Path(path).exists()) -> str | None:
    """Why the section's ``spots`` key does not fit its role, in one line; None when it does.

    Parameters
    ----------
    name : str
        The section's name, for the message.
    section : Mapping[str, Any]
        The section's config entry.
    exists : Callable[[str], bool]
        Whether a path exists (replaceable in tests).

    Returns
    -------
    str or None
        The problem and its fix, or None.
    """
    role, spots = section.get("role"), section.get("spots")
    if role in ROLES_WITH_SPOTS and not spots:
        return (f"section '{name}' (role: {role}) has no `spots`: {role} sections need a spot "
                "table; give its path, or make the section `role: predict` to only map it")
    if role == PREDICT and isinstance(spots, str) and spots and not exists(spots):
        return (f"section '{name}' (role: predict) names the spot table {spots}, which does not "
                "exist; predict sections use no spots: leave `spots` out (empty in a sample "
                "sheet) or fix the path")
    return None
