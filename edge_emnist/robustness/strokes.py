"""Characters drawn as pen strokes, the way an app's users produce them, through the demo's own preprocessing.

Each template is a few polylines in a unit box (x right, y down), written like a person would draw the
character. A sample jitters the whole shape (tilt, width, slant) and every point, picks a pen width, renders
the strokes with anti-aliased round caps on a canvas, and hands the canvas to `demo.preprocess` (the Python
twin of the page's JavaScript), so the images are what the demo would feed a model. Seeded: the same call
gives the same images everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from edge_emnist.demo.preprocess import preprocess

CANVAS = 160


def _arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, points: int = 24):
    angles = np.radians(np.linspace(start_deg, end_deg, points))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Label (as the model card names it) -> strokes. Letters are capitals whose EMNIST class holds the capital.
TEMPLATES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.5, 0.5, 0.3, 0.45, -90, 270, 40)],
    "1": [[(0.32, 0.22), (0.52, 0.05), (0.52, 0.95)]],
    "2": [_arc(0.5, 0.3, 0.28, 0.25, 190, 380, 16) + [(0.2, 0.95), (0.82, 0.95)]],
    "3": [_arc(0.48, 0.27, 0.27, 0.22, 200, 450, 16) + _arc(0.48, 0.71, 0.3, 0.24, 270, 520, 16)],
    "4": [[(0.6, 0.05), (0.15, 0.65), (0.88, 0.65)], [(0.65, 0.35), (0.65, 0.95)]],
    "5": [[(0.78, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(0.48, 0.67, 0.3, 0.27, 230, 500, 18)],
    "6": [[(0.7, 0.05), (0.45, 0.2), (0.28, 0.45)] + _arc(0.5, 0.7, 0.24, 0.25, 180, 540, 24)],
    "7": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
    "8": [_arc(0.5, 0.27, 0.2, 0.21, 90, 450, 24) + _arc(0.5, 0.71, 0.25, 0.23, -90, 270, 24)],
    "9": [_arc(0.5, 0.3, 0.24, 0.24, 0, 360, 24) + [(0.74, 0.3), (0.68, 0.95)]],
    "A": [[(0.1, 0.95), (0.5, 0.05), (0.9, 0.95)], [(0.28, 0.6), (0.72, 0.6)]],
    "C": [_arc(0.55, 0.5, 0.38, 0.45, -50, -310, 30)],
    "E": [[(0.8, 0.05), (0.22, 0.05), (0.22, 0.95), (0.8, 0.95)], [(0.22, 0.5), (0.68, 0.5)]],
    "H": [[(0.2, 0.05), (0.2, 0.95)], [(0.8, 0.05), (0.8, 0.95)], [(0.2, 0.5), (0.8, 0.5)]],
    "L": [[(0.25, 0.05), (0.25, 0.95), (0.8, 0.95)]],
    "T": [[(0.1, 0.05), (0.9, 0.05)], [(0.5, 0.05), (0.5, 0.95)]],
    "V": [[(0.1, 0.05), (0.5, 0.95), (0.9, 0.05)]],
    "X": [[(0.15, 0.05), (0.85, 0.95)], [(0.85, 0.05), (0.15, 0.95)]],
    "Z": [[(0.15, 0.05), (0.85, 0.05), (0.15, 0.95), (0.85, 0.95)]],
}


def render(strokes: list[np.ndarray], width: float, canvas: int = CANVAS) -> np.ndarray:
    """Ink (0..1) of round-capped strokes of the given pen width (pixels), anti-aliased over one pixel."""
    ys, xs = np.mgrid[0:canvas, 0:canvas].astype(np.float64) + 0.5
    distance = np.full((canvas, canvas), np.inf)
    for stroke in strokes:
        for (x0, y0), (x1, y1) in zip(stroke[:-1], stroke[1:], strict=True):
            dx, dy = x1 - x0, y1 - y0
            length2 = dx * dx + dy * dy or 1e-12
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
            distance = np.minimum(distance, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return np.clip(width / 2 - distance + 0.5, 0.0, 1.0)


def _pen_path(template: list[list[tuple[float, float]]], rng: np.random.Generator) -> list[np.ndarray]:
    """The template as one person might draw it: tilted, narrower or wider, slanted, a little shaky."""
    tilt = math.radians(rng.uniform(-10, 10))
    width, slant = rng.uniform(0.75, 1.15), rng.uniform(-0.2, 0.2)
    margin = 0.15 * CANVAS
    size = CANVAS - 2 * margin
    strokes = []
    for stroke in template:
        points = np.asarray(stroke, np.float64) - 0.5
        points += rng.normal(0, 0.015, points.shape)
        points[:, 0] = points[:, 0] * width + slant * points[:, 1]
        rotated = points @ np.array([[math.cos(tilt), math.sin(tilt)], [-math.sin(tilt), math.cos(tilt)]])
        strokes.append((rotated + 0.5) * size + margin)
    return strokes


def stroke_images(per_label: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """`per_label` drawings of every template: float32 (N, 28, 28) upright images in [0, 1] and their labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, template in TEMPLATES.items():
        for _ in range(per_label):
            pen = rng.uniform(0.045, 0.12) * CANVAS  # a fine pen to a fat fingertip
            images.append(preprocess(render(_pen_path(template, rng), pen)))
            labels.append(label)
    return np.stack(images).astype(np.float32), labels
