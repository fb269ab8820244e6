"""Handwriting-style image transformations on whole batches, in plain numpy (any Keras backend, no tf.data).

Two users: training draws random transformations per image (`Augment`), the robustness benchmark applies one
fixed transformation to every image (`rotate`, `thicken`, `rescale`, `shift`, `add_noise`). Images are float32
(B, 28, 28) in [0, 1], character bright on black, upright. Geometry is one inverse map per image (output pixel
-> input position) sampled bilinearly with zero fill, so rotation, scale, shear, shift and elastic distortion
cost one pass together.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

SIZE = 28
_CENTRE = (SIZE - 1) / 2.0


def sample(images: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """Bilinear lookup of images (B, H, W) at source positions (B, H, W); outside the image is 0."""
    batch, height, width = images.shape
    stride = width + 2
    padded = np.zeros((batch, height + 2, stride), np.float32)
    padded[:, 1:-1, 1:-1] = images
    flat = padded.ravel()
    # +1 for the zero border; far-away positions are clipped onto the border, which is zero.
    y = np.clip(src_y.astype(np.float32) + 1.0, 0.0, height + 0.999)
    x = np.clip(src_x.astype(np.float32) + 1.0, 0.0, width + 0.999)
    y_floor, x_floor = np.floor(y), np.floor(x)
    wy, wx = y - y_floor, x - x_floor  # float32 (an int64 operand would promote everything to float64)
    y0, x0 = y_floor.astype(np.int64), x_floor.astype(np.int64)
    corner = (np.arange(batch)[:, None, None] * (height + 2) + y0) * stride + x0
    top = flat.take(corner) * (1 - wx) + flat.take(corner + 1) * wx
    bottom = flat.take(corner + stride) * (1 - wx) + flat.take(corner + stride + 1) * wx
    return top * (1 - wy) + bottom * wy


def affine_sources(angle_deg, zoom, shear_deg, shift_x, shift_y, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Source positions for rotating by angle, zooming (>1 larger), shearing and shifting each image about
    its centre. Every parameter is a scalar or a (B,) array."""
    def per_image(value) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, np.float32), (batch,))[:, None, None]

    angle, shear = np.radians(per_image(angle_deg)), np.radians(per_image(shear_deg))
    zoom, tx, ty = per_image(zoom), per_image(shift_x), per_image(shift_y)
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    # Undo the shift, the rotation, the shear, then the zoom: output -> input.
    u, v = grid_x - _CENTRE - tx, grid_y - _CENTRE - ty
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * u + sin * v, -sin * u + cos * v
    u = u - np.tan(shear) * v
    return v / zoom + _CENTRE, u / zoom + _CENTRE


def _smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (zero padding) of (B, H, W) fields along H and W, as two matrix products."""
    offsets = np.arange(SIZE)[:, None] - np.arange(SIZE)[None, :]
    blur = np.exp(-0.5 * (offsets / sigma) ** 2).astype(np.float32)
    blur /= blur.sum(axis=1, keepdims=True)
    return blur @ field @ blur.T


def elastic_offsets(rng: np.random.Generator, batch: int, magnitude_px: float, sigma: float = 4.0):
    """Smooth random displacement fields (Simard et al. 2003) whose largest offsets are about magnitude_px."""
    noise = rng.uniform(-1.0, 1.0, size=(2, batch, SIZE, SIZE)).astype(np.float32)
    fields = _smooth(noise.reshape(2 * batch, SIZE, SIZE), sigma).reshape(2, batch, SIZE, SIZE)
    peak = np.abs(fields).max(axis=(2, 3), keepdims=True) + 1e-12
    return fields[0] / peak[0] * magnitude_px, fields[1] / peak[1] * magnitude_px


def _neighbourhood(images: np.ndarray, reduce) -> np.ndarray:
    """Max or min over each pixel and its 4 neighbours (a plus-shaped 1 px structuring element)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    stack = [padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1], padded[:, 1:-1, :-2],
             padded[:, 1:-1, 2:]]
    return reduce.reduce(stack)


def thicken(images: np.ndarray, pixels) -> np.ndarray:
    """Strokes thicker (pixels > 0, grey dilation) or thinner (< 0, grey erosion) by |pixels| steps of 1 px.
    `pixels` is an int or a (B,) array of ints."""
    steps = np.broadcast_to(np.asarray(pixels, np.int64), (len(images),))
    out = images.copy()
    for step in range(1, int(np.abs(steps).max(initial=0)) + 1):
        grow, shrink = steps >= step, steps <= -step
        if grow.any():
            out[grow] = _neighbourhood(out[grow], np.maximum)
        if shrink.any():
            out[shrink] = _neighbourhood(out[shrink], np.minimum)
    return out


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    return sample(images, *affine_sources(degrees, 1.0, 0.0, 0.0, 0.0, len(images)))


def rescale(images: np.ndarray, zoom: float) -> np.ndarray:
    return sample(images, *affine_sources(0.0, zoom, 0.0, 0.0, 0.0, len(images)))


def shear(images: np.ndarray, degrees: float) -> np.ndarray:
    return sample(images, *affine_sources(0.0, 1.0, degrees, 0.0, 0.0, len(images)))


def shift(images: np.ndarray, pixels: float, seed: int = 0) -> np.ndarray:
    """Move every character `pixels` away from the centre, each in its own (seeded) random direction."""
    direction = np.random.default_rng(seed).uniform(0, 2 * math.pi, len(images))
    return sample(images, *affine_sources(0.0, 1.0, 0.0, pixels * np.cos(direction), pixels * np.sin(direction),
                                          len(images)))


def add_noise(images: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    """Gaussian pixel noise (sensor grain, paper texture), clipped to [0, 1]."""
    noise = np.random.default_rng(seed).normal(0.0, std, images.shape).astype(np.float32)
    return np.clip(images + noise, 0.0, 1.0)


@dataclass(frozen=True)
class Augment:
    """Random handwriting variation for training: each image gets its own draw of every transformation.

    Magnitudes are the largest change at strength 1 (`scaled(s)` multiplies them all); 0 turns one off.
    The defaults were chosen so that in-distribution accuracy does not drop (docs/robustness.md).
    """

    rotation_deg: float = 12.0  # uniform in +-
    shift_px: float = 2.0  # uniform in +- along each axis
    scale: float = 0.15  # zoom uniform in [1 - scale, 1 + scale]
    shear_deg: float = 8.0  # uniform in +-
    thickness_px: int = 1  # strokes thinner or thicker by up to this many pixels (uniform over -n..n)
    elastic_px: float = 1.0  # largest elastic displacement; 0: no elastic distortion
    noise: float = 0.0  # std of Gaussian pixel noise

    @classmethod
    def parse(cls, spec: str | bool | dict | None) -> Augment | None:
        """'off' / 'on' / a strength ('0.5') / 'rotation_deg=15,elastic_px=0' (defaults for the rest).
        Also what config.json stored: a dict of fields, or the old true/false."""
        if spec is None or spec is False:
            return None
        if spec is True:
            return cls()
        if isinstance(spec, dict):
            return cls(**spec) if spec else None
        text = str(spec).strip().lower()
        if text in ("off", "none", "0", "false", "no"):
            return None
        if text in ("on", "default", "true", "yes"):
            return cls()
        try:
            return cls().scaled(float(text))
        except ValueError:
            pass
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for item in text.split(","):
            key, _, value = item.partition("=")
            key = key.strip()
            if key not in fields or not value:
                raise ValueError(f"augment: {item!r} is not NAME=VALUE with NAME one of {', '.join(fields)}")
            values[key] = int(value) if key == "thickness_px" else float(value)
        return cls(**values)

    def scaled(self, strength: float) -> Augment | None:
        if strength < 0:
            raise ValueError("augment strength must be 0 or more")
        if strength == 0:
            return None
        return dataclasses.replace(
            self, **{f.name: (round(getattr(self, f.name) * strength) if f.name == "thickness_px"
                              else getattr(self, f.name) * strength) for f in dataclasses.fields(self)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """images: float32 (B, 28, 28) in [0, 1] -> a randomly varied batch of the same shape."""
        batch = len(images)

        def uniform(limit: float) -> np.ndarray:
            return rng.uniform(-limit, limit, batch) if limit else np.zeros(batch)

        src_y, src_x = affine_sources(uniform(self.rotation_deg), 1.0 + uniform(self.scale),
                                      uniform(self.shear_deg), uniform(self.shift_px), uniform(self.shift_px), batch)
        if self.elastic_px:
            dy, dx = elastic_offsets(rng, batch, self.elastic_px)
            src_y, src_x = src_y + dy, src_x + dx
        out = sample(images, src_y, src_x)
        if self.thickness_px:
            out = thicken(out, rng.integers(-self.thickness_px, self.thickness_px + 1, batch))
        if self.noise:
            out = np.clip(out + rng.normal(0.0, self.noise, out.shape).astype(np.float32), 0.0, 1.0)
        return out.astype(np.float32)
