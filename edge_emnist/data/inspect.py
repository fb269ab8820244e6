"""What is on disk: which datasets are present, official or not, and whether their bytes check out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_emnist.data.registry import DATASETS, DatasetSpec
from edge_emnist.data.source import Dataset, default_cache_dir, find_local, local_data_dir, provenance
from edge_emnist.device.files import sha256_file


@dataclass
class Presence:
    spec: DatasetSpec
    folder: Path | None
    counts: dict[str, int] | None
    official: bool | None


def search_root(data_dir: str | Path | None, cache_dir: str | Path | None) -> Path:
    return local_data_dir(data_dir) or Path(cache_dir or default_cache_dir())


def presence(spec: DatasetSpec, root: Path) -> Presence:
    folder = find_local(spec, root)
    if folder is None:
        return Presence(spec, None, None, None)
    prov = provenance(spec, folder)
    return Presence(spec, folder, prov.counts, prov.official)


def list_datasets(root: Path) -> list[Presence]:
    return [presence(spec, root) for spec in DATASETS.values()]


@dataclass
class FileCheck:
    dataset: str
    file: str
    sha256: str | None
    status: str  # official | matches SHA256SUMS | MISMATCH ... | missing | no reference
    ok: bool


def _local_sums(folder: Path) -> dict[str, str]:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name.lstrip("*"): digest for digest, name in pairs}


def verify(spec: DatasetSpec, root: Path) -> list[FileCheck]:
    """Hash every file of `spec` found under `root` against the official sha256 and any local SHA256SUMS."""
    folder = find_local(spec, root)
    if folder is None:
        return [FileCheck(spec.name, name, None, "missing", False) for name in spec.filenames()]
    local = _local_sums(folder)
    checks = []
    for name in spec.filenames():
        digest = sha256_file(folder / name)
        if digest == spec.official_sha256(name):
            checks.append(FileCheck(spec.name, name, digest, "official", True))
        elif name in local:
            ok = local[name] == digest
            status = "matches SHA256SUMS (not official)" if ok else "MISMATCH with SHA256SUMS"
            checks.append(FileCheck(spec.name, name, digest, status, ok))
        else:
            checks.append(FileCheck(spec.name, name, digest, "MISMATCH with official sha256, no SHA256SUMS", False))
    return checks


def class_counts(dataset: Dataset) -> dict[str, np.ndarray]:
    return {split: np.bincount(s.labels, minlength=dataset.spec.num_classes) for split, s in dataset.splits.items()}
