"""Characters drawn as pen strokes on a 280 x 280 pad: the same strokes for Python rendering and the browser test."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

PAD = 280
LINE_WIDTH = 22  # the page's pen

# Block capitals and digits a person draws with a few straight strokes; (x, y) in pad pixels.
STROKES: dict[str, list[list[tuple[int, int]]]] = {
    "7": [[(60, 60), (220, 60), (120, 230)]],
    "H": [[(70, 40), (70, 240)], [(210, 40), (210, 240)], [(70, 140), (210, 140)]],
    "X": [[(60, 40), (220, 240)], [(220, 40), (60, 240)]],
    "Z": [[(60, 50), (220, 50), (60, 230), (220, 230)]],
    "4": [[(170, 230), (170, 40), (60, 170), (220, 170)]],
    "E": [[(200, 40), (80, 40), (80, 240), (200, 240)], [(80, 140), (180, 140)]],
    "A": [[(50, 240), (140, 40), (230, 240)], [(90, 160), (190, 160)]],
    "K": [[(80, 40), (80, 240)], [(210, 40), (80, 150), (210, 240)]],
    "N": [[(70, 240), (70, 40), (210, 240), (210, 40)]],
    "V": [[(60, 40), (140, 240), (220, 40)]],
}


def render(strokes, size: int = PAD, width: float = LINE_WIDTH) -> np.ndarray:
    """Round-capped strokes, white (1) on black (0), with one pixel of anti-aliasing like a canvas."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    ink = np.zeros((size, size))
    for stroke in strokes:
        for (x0, y0), (x1, y1) in pairwise(stroke):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy), 0, 1)
            distance = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
            ink = np.maximum(ink, np.clip(width / 2 - distance + 0.5, 0, 1))
    return ink
