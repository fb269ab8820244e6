"""On the real files in ../shared/data (skipped where they are absent)."""

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.data import load_dataset
from edge_emnist.data.registry import DATASETS, get_dataset
from edge_emnist.data.source import find_local


def test_list_shows_dev_bymerge_counts(shared_data, capsys):
    assert main(["data", "list", "--data-dir", str(shared_data / "emnist-dev")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("emnist-bymerge"))
    assert row.split()[4:7] == ["93,058", "23,265", "no"]


def test_mnist_is_official_and_complete(shared_data):
    data = load_dataset("mnist", shared_data)
    assert data.provenance.official and (len(data.train), len(data.test)) == (60_000, 10_000)


@pytest.mark.parametrize("name", ["emnist-balanced", "emnist-byclass", "emnist-bymerge", "emnist-digits",
                                  "emnist-letters", "emnist-mnist"])
def test_label_maps_match_official_mapping_files(shared_data, name):
    spec = get_dataset(name)
    rows = [line.split() for line in (shared_data / "emnist-official" / f"{name}-mapping.txt").read_text().splitlines()]
    assert [int(r[0]) - spec.label_offset for r in rows] == list(range(spec.num_classes))
    assert "".join(chr(int(r[1])) for r in rows) == "".join(spec.labels)


def test_packaged_checksums_match_the_release_lists(shared_data):
    release = {}
    for line in (shared_data / "emnist-official" / "RELEASE_SHA256").read_text().splitlines():
        digest, size, name = line.split()
        release[name] = digest
    for folder, family in [("mnist", "mnist"), ("kmnist-official", "kmnist")]:
        for line in (shared_data / folder / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split()
            release[f"{family}/{name}"] = digest
    for spec in DATASETS.values():
        for name in spec.filenames():
            key = name if spec.family.name == "emnist" else f"{spec.family.name}/{name}"
            if key in release:
                assert spec.official_sha256(name) == release[key], name


def test_emnist_loads_upright(shared_data):
    """Upright EMNIST digits look like upright MNIST digits: their class means correlate better than the
    transposed ones do. A loader that forgot to transpose fails this."""
    emnist = load_dataset("emnist-bymerge", shared_data, splits=("test",), quiet=True).test
    mnist = load_dataset("mnist", shared_data, splits=("test",)).test
    for digit in (1, 2, 4, 7):
        e = emnist.images[emnist.labels == digit].mean(0)
        m = mnist.images[mnist.labels == digit].mean(0)
        upright = np.corrcoef(e.ravel(), m.ravel())[0, 1]
        transposed = np.corrcoef(e.T.ravel(), m.ravel())[0, 1]
        assert upright > transposed + 0.1, (digit, upright, transposed)


def test_every_dev_view_loads(shared_data):
    expected = {"emnist-balanced": (15_604, 3_901), "emnist-byclass": (93_058, 23_265),
                "emnist-bymerge": (93_058, 23_265), "emnist-letters": (17_498, 4_550), "kmnist": (8_000, 2_000)}
    for name, counts in expected.items():
        data = load_dataset(name, shared_data, quiet=True)
        assert (len(data.train), len(data.test)) == counts
        assert not data.provenance.official
        assert data.train.labels.max() == data.spec.num_classes - 1
    assert find_local(get_dataset("emnist-digits"), shared_data) is None


def test_show_on_real_data(shared_data, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "--dataset", "emnist-bymerge", "-n", "64", "-o", str(out),
                 "--data-dir", str(shared_data / "emnist-dev")]) == 0
    assert out.stat().st_size > 10_000
