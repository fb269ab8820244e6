"""tf.data input pipelines: uint8 in memory, scaled to [0, 1] per batch, optional light augmentation.

Work happens on whole batches (one vectorised op per batch, not one per image) so the pipeline stays far
ahead of training; `benchmarks/input_pipeline.py` measures that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_emnist.backend import tf


@dataclass(frozen=True)
class Augment:
    """Small affine jitter that keeps a character readable (all off by default)."""

    rotation_deg: float = 10.0
    shift_px: float = 2.0
    scale: float = 0.1  # zoom in [1 - scale, 1 + scale]


def scale_images(images: tf.Tensor) -> tf.Tensor:
    """uint8 (B, 28, 28) -> float32 (B, 28, 28, 1) in [0, 1]."""
    return tf.cast(images, tf.float32)[..., tf.newaxis] / 255.0


def random_affine(images: tf.Tensor, augment: Augment, seed: int | None = None) -> tf.Tensor:
    """Rotate, scale and shift each image of a (B, H, W, 1) batch about its centre, zero fill."""
    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0

    def uniform(limit: float) -> tf.Tensor:
        return tf.random.uniform([batch], -limit, limit, seed=seed)

    angle = uniform(augment.rotation_deg) * (math.pi / 180.0)
    inv_zoom = 1.0 / (1.0 + uniform(augment.scale))
    tx, ty = uniform(augment.shift_px), uniform(augment.shift_px)
    cos, sin = tf.cos(angle) * inv_zoom, tf.sin(angle) * inv_zoom
    # Output pixel p maps to input c + R^T (p - c - t) / zoom: ImageProjectiveTransform wants output->input.
    a2 = cx - cos * (cx + tx) - sin * (cy + ty)
    b2 = cy + sin * (cx + tx) - cos * (cy + ty)
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, sin, a2, -sin, cos, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([height, width], tf.int32),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 256,
    shuffle: bool = False,
    augment: Augment | None = None,
    cache: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 images (B, 28, 28, 1) in [0, 1], int64 labels)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment is None:
        ds = ds.map(lambda x, y: (scale_images(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, y: (random_affine(scale_images(x), augment, seed), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
