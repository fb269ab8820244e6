"""EMNIST views re-derived from another view's files, for local data whose own view is unusable.

The letters view is the bymerge view without its digits, each letter class mapped to its case-merged
letter (bymerge's `a` and `A` both become letter 1). Unlike byclass, that needs nothing bymerge lost.
Like the official letters split it is balanced by default: each split keeps, in file order, the first n
images of every letter, n being that split's rarest letter's count (`balanced=False` keeps every letter
image). On ../shared/data/emnist-dev this reproduces the shared letters view exactly. It is still not the
official split (other writers, fewer images): a derived view says so in its provenance.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edge_emnist.data.idx import read_idx, write_idx
from edge_emnist.data.registry import SPLITS, DatasetSpec, get_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import DataError
from edge_emnist.io import atomic_path


def case_merged_classes(source: DatasetSpec, letters: DatasetSpec) -> np.ndarray:
    """For each class of `source`, its class in `letters` (0-based), or -1 for a class with no letter."""
    index = {label.upper(): i for i, label in enumerate(letters.labels)}
    return np.array([index.get(label.upper(), -1) for label in source.labels], dtype=np.int64)


def balanced_subset(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Indices, in file order, of the first n images of every class, n being the rarest class's count."""
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    n = min(len(m) for m in members)
    return np.sort(np.concatenate([m[:n] for m in members]))


def derive_letters(source_dir: Path, out_dir: Path, source: str = "emnist-bymerge",
                   balanced: bool = True) -> dict[str, int]:
    """Write the emnist-letters files into `out_dir` from `source`'s files in `source_dir`; returns counts."""
    spec, letters = get_dataset(source), get_dataset("emnist-letters")
    to_letter = case_merged_classes(spec, letters)
    derived = {}  # every split read and checked before anything is written
    for split in SPLITS:
        images = read_idx(source_dir / spec.filename(split, "images"), rank=3, dtype=np.uint8)
        labels = read_idx(source_dir / spec.filename(split, "labels"), rank=1, dtype=np.uint8).astype(np.int64)
        if len(labels) != len(images) or (len(labels) and labels.max() >= spec.num_classes):
            raise DataError(f"{source_dir}: {spec.name} {split} labels do not fit its images or its classes")
        mapped = to_letter[labels - spec.label_offset]
        keep = balanced_subset(mapped, letters.num_classes) if balanced else np.flatnonzero(mapped >= 0)
        derived[split] = {"images": images[keep], "labels": mapped[keep] + letters.label_offset}
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, arrays in derived.items():
        for kind, array in arrays.items():
            with atomic_path(out_dir / letters.filename(split, kind)) as tmp:
                write_idx(tmp, array.astype(np.uint8), compress=True)
    counts = {split: len(arrays["labels"]) for split, arrays in derived.items()}
    for extra in letters.extra_files:  # the mapping file, where the source folder has it
        if (source_dir / extra).exists():
            shutil.copyfile(source_dir / extra, out_dir / extra)
    # `edge-emnist data verify` checks derived folders against their SHA256SUMS
    sums = "".join(f"{sha256_file(out_dir / name)}  {name}\n" for name in letters.filenames())
    with atomic_path(out_dir / "SHA256SUMS") as tmp:
        tmp.write_text(sums)
    return counts
