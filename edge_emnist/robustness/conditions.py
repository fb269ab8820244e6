"""The robustness benchmark's conditions: one table of transformation families and their strengths.

Every condition is a deterministic function of the test images (and a seed), applied to the same seeded
sample of emnist-dev test images for every artifact, so two artifacts' figures are directly comparable.
The identity (strength 0 / zoom 1) of every family is the clean reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_emnist.data import augment as aug


@dataclass(frozen=True)
class Family:
    name: str
    unit: str  # what a strength means, for axis labels
    strengths: tuple[float, ...]
    apply: Callable[[np.ndarray, float, int], np.ndarray]  # (images, strength, seed) -> images
    identity: float = 0.0


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("rotation", "degrees", (-20, -15, -10, -5, 0, 5, 10, 15, 20), lambda x, s, seed: aug.rotate(x, s)),
    Family("thickness", "pixels", (-2, -1, 0, 1, 2), lambda x, s, seed: aug.thicken(x, int(s))),
    Family("scale", "zoom", (0.7, 0.8, 0.9, 1.0, 1.1, 1.2), lambda x, s, seed: aug.rescale(x, s), identity=1.0),
    Family("shift", "pixels off centre", (0, 1, 2, 3, 4), lambda x, s, seed: aug.shift(x, s, seed)),
    Family("noise", "pixel std", (0, 0.1, 0.2, 0.3), lambda x, s, seed: aug.add_noise(x, s, seed)),
)}

# The "robust accuracy" of the summary table and of `pick --min-robust-accuracy`: the mean over these
# conditions, the everyday ones (a tilted hand, a thicker or thinner pen, a character drawn small or large
# or off-centre).
DEFAULT_CONDITIONS: tuple[tuple[str, float], ...] = (
    ("rotation", -15), ("rotation", 15), ("thickness", -1), ("thickness", 1), ("scale", 0.8), ("scale", 1.2),
    ("shift", 2),
)


def transformed(images: np.ndarray, family: str, strength: float, seed: int = 0) -> np.ndarray:
    """float32 (N, 28, 28) upright images in [0, 1] under one condition."""
    entry = FAMILIES[family]
    return images if strength == entry.identity else entry.apply(images, strength, seed).astype(np.float32)
