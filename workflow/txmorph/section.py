"""One tissue section as the rules see it: its checked image and spot table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from txmorph.inputs import check_spots, read_image, read_spots


@dataclass
class Section:
    name: str
    image: np.ndarray
    spots: pd.DataFrame  # gene, x, y in pixels, all inside the image
    pixel_size_um: float
    spots_dropped: int


def load_spots(
    spots_path: str, params: Mapping[str, Any], image_shape: tuple[int, int], genes: Sequence[str]
) -> tuple[pd.DataFrame, int]:
    """Read and check a section's spots against its image shape; returns (spots, dropped)."""
    spots = read_spots(spots_path, params["columns"])
    return check_spots(spots, image_shape, genes, spots_path, outside=params["spots_outside_image"])


def load_section(
    image_path: str, spots_path: str, params: Mapping[str, Any], genes: Sequence[str]
) -> Section:
    """Read and check a section's image and spots (``params``: a rule's section params)."""
    image = read_image(image_path)
    spots, dropped = load_spots(spots_path, params, image.shape, genes)
    return Section(
        name=params["name"],
        image=image,
        spots=spots,
        pixel_size_um=float(params["pixel_size_um"]),
        spots_dropped=dropped,
    )


def spots_by_gene(spots: pd.DataFrame, genes: Sequence[str]) -> dict[str, np.ndarray]:
    """(x, y) coordinates of each gene's spots, in the order of ``genes``."""
    return {
        gene: spots.loc[spots["gene"] == gene, ["x", "y"]].to_numpy(np.float64) for gene in genes
    }
