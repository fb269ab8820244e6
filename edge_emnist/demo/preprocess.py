"""A drawing -> the 28x28 image the models were trained on (the Python twin of web/preprocess.js).

The steps follow how MNIST and EMNIST were made: crop to the ink, scale the longer side into a 20-pixel
box keeping the aspect ratio (area averaging: the soft, anti-aliased edges of the training images), put it
in a 28x28 field, shift it so its centre of mass sits at the centre, soften once more with a [1 2 1]/4
blur, and rescale so the darkest ink is 1. The result is upright, as the models see EMNIST after the data
layer undoes the files' transposition; `transpose=True` gives the raw-file orientation instead.

Every step is plain arithmetic in float64 so the JavaScript version gives the same numbers (a test runs
both on the same input). Rounding is floor(x + 0.5) in both languages (Python's round() is banker's).
"""

from __future__ import annotations

import math

import numpy as np

FIELD = 28
BOX = 20
INK_THRESHOLD = 0.05  # canvas pixels below this are background (anti-aliasing dust)


def area_weights(source: int, target: int) -> np.ndarray:
    """target x source matrix: how much of each source pixel falls into each target pixel, rows summing to 1."""
    weights = np.zeros((target, source))
    step = source / target
    for t in range(target):
        start, end = t * step, (t + 1) * step
        for s in range(math.floor(start), min(source, math.ceil(end))):
            weights[t, s] = min(end, s + 1) - max(start, s)
        weights[t] /= step
    return weights


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def blur121(image: np.ndarray) -> np.ndarray:
    """Separable [1 2 1]/4 blur with zero padding."""
    padded = np.pad(image, 1)
    rows = 0.25 * padded[:-2, :] + 0.5 * padded[1:-1, :] + 0.25 * padded[2:, :]
    return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]


def preprocess(ink: np.ndarray, *, transpose: bool = False) -> np.ndarray | None:
    """ink: H x W, 0 (paper) to 1 (ink) or 0-255. Returns a 28 x 28 float32 in [0, 1], or None if blank."""
    ink = np.asarray(ink, dtype=np.float64)
    if ink.ndim != 2:
        raise ValueError(f"want a 2-D grayscale drawing, got shape {ink.shape}")
    if ink.max(initial=0) > 1:
        ink = ink / 255.0
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return None
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    out_h, out_w = max(1, _round(height * scale)), max(1, _round(width * scale))
    small = area_weights(height, out_h) @ (crop @ area_weights(width, out_w).T)  # the order preprocess.mjs uses

    total = small.sum()
    ys, xs = np.arange(out_h), np.arange(out_w)
    mass_y = (small.sum(axis=1) @ ys) / total
    mass_x = (small.sum(axis=0) @ xs) / total
    centre = (FIELD - 1) / 2
    top = min(max(_round(centre - mass_y), 0), FIELD - out_h)  # clamped: never push ink out of the field
    left = min(max(_round(centre - mass_x), 0), FIELD - out_w)
    field = np.zeros((FIELD, FIELD))
    field[top:top + out_h, left:left + out_w] = small
    field = blur121(field)
    field /= field.max()
    field = np.clip(field, 0.0, 1.0)
    return (field.T if transpose else field).astype(np.float32)
