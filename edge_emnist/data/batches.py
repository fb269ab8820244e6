"""Input batches in plain numpy: uint8 in memory, scaled to [0, 1] per batch, optional augmentation.

No tf.data, so any Keras backend (and any framework) can consume them. Order and augmentation are a pure
function of (seed, epoch, batch index): a resumed run sees exactly the batches an uninterrupted one would
have seen, and batches can be made in any order or in parallel. `benchmarks/input_pipeline.py` measures it.
"""

from __future__ import annotations

import math

import numpy as np

from edge_emnist.data.augment import Augment


def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 (B, 28, 28) -> float32 (B, 28, 28) in [0, 1]."""
    return images.astype(np.float32) / np.float32(255.0)


class Batches:
    """Batches of (float32 images (B, 28, 28, 1) in [0, 1], int64 labels), indexable like keras' PyDataset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 256, shuffle: bool = False,
                 augment: Augment | None = None, seed: int = 0, epoch: int = 0, pad_to: int = 1):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.images, self.labels = images, labels.astype(np.int64)
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        # pad_to > 1: every batch is a multiple of it (JAX shards a batch evenly over devices), the padding
        # repeats the batch's first image with sample weight 0, and every batch carries weights (x, y, w), so
        # loss and accuracy are those of the real images only.
        self.pad_to = pad_to
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Which epoch's order (and augmentation draws) to serve."""
        self.epoch = epoch
        count = len(self.labels)
        self.order = (np.random.default_rng([self.seed, epoch]).permutation(count) if self.shuffle
                      else np.arange(count))

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        picks = self.order[index * self.batch_size: (index + 1) * self.batch_size]
        if self.shuffle:
            picks = np.sort(picks)  # same images, memory order: faster gathers; the batch's order is irrelevant
        x = scale_images(self.images[picks])
        if self.augment is not None:
            x = self.augment(x, np.random.default_rng([self.seed, self.epoch, index]))
        if self.pad_to > 1:
            return self._padded(x[..., None], self.labels[picks])
        return x[..., None], self.labels[picks]

    def _padded(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        missing = -len(y) % self.pad_to
        weights = np.concatenate([np.ones(len(y), np.float32), np.zeros(missing, np.float32)])
        return (np.concatenate([x, np.repeat(x[:1], missing, axis=0)]),
                np.concatenate([y, np.repeat(y[:1], missing)]), weights)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.set_epoch(self.epoch + 1)
