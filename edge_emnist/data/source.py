"""Finding a dataset's files (local folder or download cache), loading them upright, and recording
exactly which bytes were used, so every result can say which data it came from."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge_emnist.data import download as dl
from edge_emnist.data.idx import read_idx, read_idx_shape
from edge_emnist.data.registry import SPLITS, DatasetSpec, get_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import DataError
from edge_emnist.options import option

DATA_ENV = "EDGE_EMNIST_DATA"
CACHE_ENV = "EDGE_EMNIST_CACHE"


@dataclass
class DataLocation:
    """Where every command that reads a dataset finds it (the CLI's "data location" options)."""

    data_dir: str | None = option(None, metavar="DIR", help="local folder with the IDX files, or a folder of such "
                                                            "folders (default: $EDGE_EMNIST_DATA, else the download "
                                                            "cache)")
    cache_dir: str | None = option(None, metavar="DIR",
                                   help="download cache (default: $EDGE_EMNIST_CACHE or ~/.cache/edge-emnist)")
    no_download: bool = option(False, help="fail instead of downloading missing files")


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edge-emnist")


def local_data_dir(data_dir: str | Path | None = None) -> Path | None:
    chosen = data_dir or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def candidate_dirs(spec: DatasetSpec, root: Path) -> list[Path]:
    """A root may be the folder of the files itself or hold one folder per family (emnist-dev/, mnist/...)."""
    return [root] + [root / sub for sub in spec.family.local_dirs]


def find_local(spec: DatasetSpec, root: Path) -> Path | None:
    for folder in candidate_dirs(spec, root):
        if all((folder / name).is_file() for name in spec.filenames()):
            return folder
    return None


def _what_is_missing(spec: DatasetSpec, root: Path) -> str:
    """Name the missing files of the folder that has most of them, or say that none is anywhere."""
    folders = [f for f in candidate_dirs(spec, root) if f.is_dir()]
    present = {f: [n for n in spec.filenames() if (f / n).is_file()] for f in folders}
    best = max(folders, key=lambda f: len(present[f]), default=None)
    if best is None or not present[best]:
        return (f"files not found in {root} or its sub-folders {', '.join(spec.family.local_dirs)} "
                f"(looked for {spec.filename('train', 'images')} and 3 more)")
    missing = [n for n in spec.filenames() if n not in present[best]]
    return f"{best} has {len(present[best])} of its files but not {', '.join(missing)}"


def locate(
    spec: DatasetSpec,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The folder holding `spec`'s four files. A local folder, if given, is used alone (never the network)."""
    root = local_data_dir(data_dir)
    if root is not None:
        found = find_local(spec, root)
        if found is None:
            raise DataError(f"{spec.name}: {_what_is_missing(spec, root)}")
        return found
    cache = Path(cache_dir or default_cache_dir()) / spec.family.name
    if all((cache / name).is_file() for name in spec.filenames()):
        return cache
    if not download:
        raise DataError(f"{spec.name}: not in the cache {cache}; run `edge-emnist data download --dataset {spec.name}`")
    return dl.download(spec, cache, progress=progress)


@dataclass(frozen=True)
class Provenance:
    """Which bytes a result came from: recorded in every run and model card."""

    dataset: str
    directory: str
    files: dict[str, str]  # file name -> sha256
    official: bool
    fingerprint: str  # sha256 over the sorted (name, sha256) pairs
    counts: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def provenance(spec: DatasetSpec, folder: Path, counts: dict[str, int] | None = None) -> Provenance:
    files = {name: sha256_file(folder / name) for name in spec.filenames()}
    official = all(spec.official_sha256(name) == digest for name, digest in files.items())
    fingerprint = hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(files.items())).encode()).hexdigest()
    if counts is None:
        counts = {split: read_idx_shape(folder / spec.filename(split, "labels"))[0] for split in SPLITS}
    return Provenance(spec.name, str(folder), files, official, fingerprint, counts)


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8, upright
    labels: np.ndarray  # (N,) int64 in 0..num_classes-1

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    spec: DatasetSpec
    splits: dict[str, Split]
    provenance: Provenance

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def test(self) -> Split:
        return self.splits["test"]


def load_split(spec: DatasetSpec, folder: Path, split: str) -> Split:
    images_path = folder / spec.filename(split, "images")
    labels_path = folder / spec.filename(split, "labels")
    declared = read_idx_shape(images_path)  # the header alone: a wrong file is refused before it is inflated
    if len(declared) == 3 and declared[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {declared[1]}x{declared[2]}, expected 28x28")
    most = spec.official_counts[split]  # local copies are subsets; nothing larger is read into memory
    images = read_idx(images_path, rank=3, dtype=np.uint8, shape_limit=(most, 28, 28))
    labels = read_idx(labels_path, rank=1, dtype=np.uint8, shape_limit=(most,))
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels):,} labels for {len(images):,} images in {images_path.name}")
    labels = labels.astype(np.int64) - spec.label_offset
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        lo, hi = spec.label_offset, spec.label_offset + spec.num_classes - 1
        bad = int(labels.min() if labels.min() < 0 else labels.max()) + spec.label_offset
        raise DataError(f"{labels_path}: label {bad} outside {spec.name}'s range {lo}..{hi}")
    if spec.transposed:  # EMNIST stores characters transposed; models and people see them upright
        images = images.transpose(0, 2, 1)
    return Split(np.ascontiguousarray(images), labels)


_said: set[str] = set()


def notice(message: str) -> None:
    """A notice on stderr, once per process: a pipeline loads the same data a dozen times."""
    if message not in _said:
        _said.add(message)
        print(f"notice: {message}", file=sys.stderr)


def unofficial_notice(prov: Provenance, spec: DatasetSpec) -> str:
    got = "/".join(f"{prov.counts[s]:,}" for s in SPLITS)
    official = "/".join(f"{spec.official_counts[s]:,}" for s in SPLITS)
    return (
        f"{spec.name} in {prov.directory} is not the official release (sha256 differs; train/test "
        f"{got} vs official {official}); results will be tagged with fingerprint {prov.fingerprint[:12]}"
    )


NO_DOWNLOAD_ENV = "EDGE_EMNIST_NO_DOWNLOAD"


def load_dataset(
    name: str | DatasetSpec,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    splits: tuple[str, ...] = SPLITS,
    download: bool | None = None,
    progress: bool = True,
    quiet: bool = False,
) -> Dataset:
    """Load a dataset by registry name. Non-official files load with a one-line notice on stderr.

    download=None follows $EDGE_EMNIST_NO_DOWNLOAD (set by the CLI's --no-download), so every stage that
    loads data deep inside train/export/bench honours the flag without passing it down.
    """
    spec = get_dataset(name) if isinstance(name, str) else name
    if download is None:
        download = os.environ.get(NO_DOWNLOAD_ENV, "") not in ("1", "true", "yes")
    folder = locate(spec, data_dir, cache_dir, download=download, progress=progress)
    loaded = {split: load_split(spec, folder, split) for split in splits}
    prov = provenance(spec, folder)
    if not prov.official and not quiet:
        notice(unofficial_notice(prov, spec))
    return Dataset(spec, loaded, prov)
