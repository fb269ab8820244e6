"""Do the labels belong to the images? A cheap test before hours of training.

Checksums prove the bytes are the ones published, not that labels and images line up: a derived copy
that pairs one file's images with another file's labels (EMNIST's byclass and bymerge test files do not
hold the same images in the same order) passes every checksum and trains to chance, at the cost of a
whole run. A 1-nearest-neighbour classifier on raw pixels needs no training and reads real handwriting
far above chance (with 5,000 references: MNIST 0.95, EMNIST bymerge 0.65), while shuffled labels leave
it at the level of guessing the class frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_emnist.data.source import Dataset

# pass when 1-NN beats this many times the better of uniform guessing and always answering the commonest class
MARGIN = 2.0


@dataclass(frozen=True)
class LabelCheck:
    dataset: str
    references: int  # train images used as neighbours
    queries: int  # test images classified
    accuracy: float
    chance: float  # expected accuracy of guessing with the class frequencies
    majority: float  # share of the commonest class among the queries
    threshold: float

    @property
    def ok(self) -> bool:
        return self.accuracy >= self.threshold

    def line(self) -> str:
        verdict = "labels match the images" if self.ok else "LABELS DO NOT MATCH THE IMAGES"
        return (f"{self.dataset}: 1-NN on pixels, {self.references:,} train -> {self.queries:,} test images: "
                f"accuracy {self.accuracy:.3f} (frequency guessing {self.chance:.3f}, commonest class "
                f"{self.majority:.3f}, pass at {self.threshold:.3f}): {verdict}")


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def nearest_neighbour_labels(references: np.ndarray, reference_labels: np.ndarray, queries: np.ndarray,
                             chunk: int = 512) -> np.ndarray:
    """1-NN by squared Euclidean distance, in chunks so memory stays at chunk x references floats."""
    ref = _flat(references)
    ref_norms = (ref * ref).sum(axis=1)
    out = np.empty(len(queries), reference_labels.dtype)
    for start in range(0, len(queries), chunk):
        q = _flat(queries[start:start + chunk])
        distances = ref_norms[None, :] - 2.0 * q @ ref.T  # |q|^2 is the same for every reference
        out[start:start + chunk] = reference_labels[distances.argmin(axis=1)]
    return out


def check_labels(dataset: Dataset, references: int = 5000, queries: int = 1000, seed: int = 0) -> LabelCheck:
    """Classify a test sample by its nearest train images; shuffled labels fall to frequency guessing."""
    train, test = dataset.train, dataset.test
    rng = np.random.default_rng(seed)
    r = np.sort(rng.choice(len(train.labels), size=min(references, len(train.labels)), replace=False))
    q = np.sort(rng.choice(len(test.labels), size=min(queries, len(test.labels)), replace=False))
    predicted = nearest_neighbour_labels(train.images[r], train.labels[r], test.images[q])
    truth = test.labels[q]
    classes = dataset.spec.num_classes
    train_share = np.bincount(train.labels[r], minlength=classes) / len(r)
    test_share = np.bincount(truth, minlength=classes) / len(q)
    chance = float(train_share @ test_share)
    majority = float(test_share.max())
    return LabelCheck(dataset=dataset.spec.name, references=len(r), queries=len(q),
                      accuracy=float((predicted == truth).mean()), chance=chance, majority=majority,
                      threshold=MARGIN * max(chance, majority, 1.0 / classes))
