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


LISTING_HEADERS = ["dataset", "classes", "official train", "official test", "local train", "local test", "official",
                   "folder"]


def listing(root: Path, check: bool = False) -> tuple[list[str], list[list]]:
    """`data list`: every registered dataset, whether it is here and official; with `check`, whether its labels
    belong to its images (a second per present dataset)."""
    rows = []
    for p in list_datasets(root):
        official = p.spec.official_counts
        rows.append([p.spec.name, p.spec.num_classes, official["train"], official["test"],
                     p.counts["train"] if p.counts else "-", p.counts["test"] if p.counts else "-",
                     {None: "-", True: "yes", False: "no"}[p.official], str(p.folder) if p.folder else "not present"])
        if check:
            rows[-1].append(_label_verdict(p) if p.folder else "-")
    return LISTING_HEADERS + (["labels (data check)"] if check else []), rows


def _label_verdict(present: Presence) -> str:
    from edge_emnist.data.sanity import check_labels
    from edge_emnist.data.source import load_dataset

    result = check_labels(load_dataset(present.spec, present.folder, quiet=True))
    return f"{'match' if result.ok else 'DO NOT MATCH'} (1-NN {result.accuracy:.3f})"


def verify_all(name: str, root: Path) -> list[FileCheck]:
    """`data verify`: one dataset's files, or with "all" every present dataset's (absent ones are not failures)."""
    from edge_emnist.data.registry import get_dataset
    from edge_emnist.errors import EdgeEmnistError

    names = list(DATASETS) if name == "all" else [name]
    checks = [c for n in names for c in verify(get_dataset(n), root)]
    if name == "all":
        present = {c.dataset for c in checks if c.status != "missing"}
        checks = [c for c in checks if c.dataset in present]
    if not checks:
        raise EdgeEmnistError(f"no dataset files found under {root}")
    return checks


STATS_HEADERS = ["class", "label", "train", "test", "train %"]


def stats_rows(dataset: Dataset, counts: dict[str, np.ndarray]) -> list[list]:
    """`data stats`: per class its label, train and test counts and share of train."""
    spec, total = dataset.spec, counts["train"].sum()
    return [[c, spec.display_label(c, ascii_only=True), int(counts["train"][c]), int(counts["test"][c]),
             f"{100 * counts['train'][c] / total:.2f}"] for c in range(spec.num_classes)]
