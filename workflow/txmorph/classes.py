"""The class list and the class names every table and figure shares (defined only here).

Deliberately free of heavy imports: the Snakefile's rules import it at parse time.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Classes that are not genes, first in every class list: a label is its index in the list,
#: and a mean over these alone says nothing about the genes.
GENERAL_CLASSES = ("background", "tissue")
#: The ``class`` of a Dice table's row that holds the mean over the evaluable classes.
MEAN_CLASS = "mean"
#: Niche classes are named ``niche1`` ... ``nicheK``, the largest first (txmorph.niches).
NICHE_PREFIX = "niche"
#: Mean Dice reported by Andersson et al., ISBI 2020 (five sizes, four classes, mouse brain).
REFERENCE_DICE = 0.51


def class_names(gene_classes: Iterable[str]) -> list[str]:
    """The class list ``["background", "tissue", *gene_classes]``.

    Parameters
    ----------
    gene_classes
        The gene classes' names, in config order.

    Returns
    -------
    list[str]
        Every class name; a label is the index of its class in this list.
    """
    return [*GENERAL_CLASSES, *gene_classes]


def niche_classes(k: int) -> list[str]:
    """The niche classes' stable names, ``["niche1", ..., "nicheK"]`` (``niches: K``).

    Parameters
    ----------
    k
        The number of niches.

    Returns
    -------
    list[str]
        One name per niche, numbered from 1 by size.
    """
    return [f"{NICHE_PREFIX}{i + 1}" for i in range(int(k))]
