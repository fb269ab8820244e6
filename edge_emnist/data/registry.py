"""Every dataset the two studies use, as one table of facts.

File names, label maps and counts come from the official releases; the sha256 of every official file is
kept in `checksums/<family>.sha256` (format: `sha256 size name`, size `-` where unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from edge_emnist.errors import DataError

SPLITS = ("train", "test")
KINDS = ("images", "labels")


@dataclass(frozen=True)
class Family:
    """Where a group of datasets comes from: one download serves all its members."""

    name: str
    urls: tuple[str, ...]  # tried in order; the sha256 decides, so mirrors are safe
    archive: str | None = None  # name of a zip holding every file (EMNIST), else None
    archive_prefix: str = ""  # folder of the files inside the archive
    local_dirs: tuple[str, ...] = ()  # sub-folders of a data root where a local copy may live
    homepage: str = ""
    license: str = ""
    checksums: dict[str, tuple[str, int | None]] | None = None  # None: the packaged checksums/<name>.sha256

    def official(self) -> dict[str, tuple[str, int | None]]:
        """file name -> (sha256, size or None) of the official release."""
        return self.checksums if self.checksums is not None else packaged_checksums(self.name)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    family: Family
    file_pattern: str  # formatted with split= and kind=
    labels: tuple[str, ...]  # index -> character, after label_offset is applied
    official_counts: dict[str, int]
    label_offset: int = 0  # emnist-letters stores 1..26 in its files
    transposed: bool = False  # EMNIST images are stored transposed
    label_names: tuple[str, ...] = ()  # ASCII names for characters a plain font cannot draw
    description: str = ""
    extra_files: tuple[str, ...] = ()  # e.g. the mapping file, extracted beside the data
    split_names: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))  # MNIST says t10k

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def filename(self, split: str, kind: str) -> str:
        if split not in SPLITS or kind not in KINDS:
            raise ValueError(f"split must be one of {SPLITS} and kind one of {KINDS}")
        return self.file_pattern.format(
            split=dict(self.split_names)[split], kind=kind, idx="idx3" if kind == "images" else "idx1"
        )

    def filenames(self) -> list[str]:
        return [self.filename(s, k) for s in SPLITS for k in KINDS]

    def official_sha256(self, filename: str) -> str | None:
        entry = self.family.official().get(filename)
        return entry[0] if entry else None

    def official_size(self, filename: str) -> int | None:
        entry = self.family.official().get(filename)
        return entry[1] if entry else None

    def display_label(self, index: int, ascii_only: bool = False) -> str:
        if ascii_only and self.label_names:
            return self.label_names[index]
        return self.labels[index]

    def card_labels(self) -> dict[str, str]:
        """{"0": "0", ..., "46": "t"}: output index to character, as model cards list them."""
        return {str(i): self.display_label(i) for i in range(self.num_classes)}


DEFAULT_DATASET = "emnist-bymerge"  # what every command trains on, measures and reports unless told otherwise


@cache
def packaged_checksums(family: str) -> dict[str, tuple[str, int | None]]:
    text = resources.files("edge_emnist.data").joinpath(f"checksums/{family}.sha256").read_text()
    table: dict[str, tuple[str, int | None]] = {}
    for line in text.splitlines():
        if line.strip():
            digest, size, name = line.split()
            table[name] = (digest, None if size == "-" else int(size))
    return table


EMNIST = Family(
    name="emnist",
    urls=("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",),
    archive="gzip.zip",
    archive_prefix="gzip/",
    local_dirs=("emnist", "emnist-dev", "gzip"),
    homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
    license="NIST (public domain in the US)",
)
MNIST = Family(
    name="mnist",
    urls=(
        "https://yann.lecun.com/exdb/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror: same bytes, same sha256
    ),
    local_dirs=("mnist",),
    homepage="https://yann.lecun.com/exdb/mnist/",
    license="CC BY-SA 3.0",
)
KMNIST = Family(
    name="kmnist",
    urls=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    local_dirs=("kmnist", "kmnist-dev"),
    homepage="https://github.com/rois-codh/kmnist",
    license="CC BY-SA 4.0",
)

_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MERGED_LOWER = "abdefghnqrt"  # lower-case letters kept apart from their capitals in bymerge/balanced
_ALL_LOWER = "abcdefghijklmnopqrstuvwxyz"
_T10K = (("train", "train"), ("test", "t10k"))
_HIRAGANA = ("お", "き", "す", "つ", "な", "は", "ま", "や", "れ", "を")
_HIRAGANA_NAMES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


def _emnist(split_name: str, labels: str, train: int, test: int, description: str, offset: int = 0):
    return DatasetSpec(
        name=f"emnist-{split_name}",
        family=EMNIST,
        file_pattern=f"emnist-{split_name}-{{split}}-{{kind}}-{{idx}}-ubyte.gz",
        labels=tuple(labels),
        official_counts={"train": train, "test": test},
        label_offset=offset,
        transposed=True,
        description=description,
        extra_files=(f"emnist-{split_name}-mapping.txt",),
    )


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _emnist("balanced", _DIGITS + _UPPER + _MERGED_LOWER, 112_800, 18_800,
                "47 classes, equal count per class"),
        _emnist("byclass", _DIGITS + _UPPER + _ALL_LOWER, 697_932, 116_323,
                "62 classes, every case kept apart, unbalanced"),
        _emnist("bymerge", _DIGITS + _UPPER + _MERGED_LOWER, 697_932, 116_323,
                "47 classes, look-alike lower/upper cases merged, unbalanced"),
        _emnist("digits", _DIGITS, 240_000, 40_000, "10 digit classes, balanced"),
        _emnist("letters", _UPPER, 124_800, 20_800,
                "26 classes, upper and lower case merged (labels 1..26 in the files)", offset=1),
        _emnist("mnist", _DIGITS, 60_000, 10_000, "EMNIST's MNIST-compatible digits"),
        DatasetSpec(
            name="mnist",
            family=MNIST,
            file_pattern="{split}-{kind}-{idx}-ubyte.gz",
            labels=tuple(_DIGITS),
            official_counts={"train": 60_000, "test": 10_000},
            split_names=_T10K,
            description="LeCun et al. 1998 handwritten digits",
        ),
        DatasetSpec(
            name="kmnist",
            family=KMNIST,
            file_pattern="{split}-{kind}-{idx}-ubyte.gz",
            labels=_HIRAGANA,
            label_names=_HIRAGANA_NAMES,
            official_counts={"train": 60_000, "test": 10_000},
            split_names=_T10K,
            description="Kuzushiji-MNIST: 10 cursive hiragana",
        ),
    )
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None
