import dataclasses

import numpy as np
import pytest

from edge_emnist.data import load_dataset
from edge_emnist.data.idx import write_idx
from edge_emnist.data.registry import DATASETS, get_dataset
from edge_emnist.data.source import locate
from edge_emnist.errors import DataError
from tests.conftest import write_tiny


def test_loads_upright_with_labels(tiny_bymerge, capsys):
    spec, folder, written = tiny_bymerge
    data = load_dataset(spec.name, folder)
    for split in ("train", "test"):
        np.testing.assert_array_equal(data.splits[split].images, written[split][0])
        np.testing.assert_array_equal(data.splits[split].labels, written[split][1])
    assert data.train.images[0][3, 10] == 255 and data.train.images[0][10, 3] == 0  # bar on top, upright


def test_unofficial_files_load_with_one_line_notice(tiny_bymerge, capsys):
    spec, folder, _ = tiny_bymerge
    data = load_dataset(spec.name, folder)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("notice: emnist-bymerge") and "not the official release" in err[0]
    assert data.provenance.official is False
    assert data.provenance.counts == {"train": 3 * 47, "test": 47}
    assert set(data.provenance.files) == set(spec.filenames())


def test_fingerprint_changes_with_the_bytes(tiny_bymerge):
    spec, folder, _ = tiny_bymerge
    first = load_dataset(spec.name, folder, quiet=True).provenance.fingerprint
    assert load_dataset(spec.name, folder, quiet=True).provenance.fingerprint == first
    write_tiny(spec, folder, seed=1)
    assert load_dataset(spec.name, folder, quiet=True).provenance.fingerprint != first


def test_official_hashes_mark_data_official(tmp_path):
    spec = get_dataset("mnist")
    write_tiny(spec, tmp_path / "mnist", counts={"train": 20, "test": 10})
    hashes = {name: (__import__("hashlib").sha256((tmp_path / "mnist" / name).read_bytes()).hexdigest(), None)
              for name in spec.filenames()}
    patched = dataclasses.replace(spec, family=dataclasses.replace(spec.family, checksums=hashes))
    data = load_dataset(patched, tmp_path)
    assert data.provenance.official is True


def test_letters_labels_shift_to_zero_based(tmp_path):
    spec = get_dataset("emnist-letters")
    write_tiny(spec, tmp_path)
    data = load_dataset(spec.name, tmp_path, quiet=True)
    assert data.train.labels.min() == 0 and data.train.labels.max() == 25


def test_label_out_of_range(tiny_bymerge):
    spec, folder, _ = tiny_bymerge
    write_idx(folder / spec.filename("test", "labels"), np.full(47, 47, np.uint8))
    with pytest.raises(DataError, match=r"label 47 outside emnist-bymerge's range 0\.\.46"):
        load_dataset(spec.name, folder, quiet=True)


def test_letters_label_zero_is_out_of_range(tmp_path):
    spec = get_dataset("emnist-letters")
    write_tiny(spec, tmp_path)
    write_idx(tmp_path / spec.filename("test", "labels"), np.zeros(26, np.uint8))
    with pytest.raises(DataError, match=r"label 0 outside emnist-letters's range 1\.\.26"):
        load_dataset(spec.name, tmp_path, quiet=True)


def test_image_label_count_mismatch(tiny_bymerge):
    spec, folder, _ = tiny_bymerge
    write_idx(folder / spec.filename("train", "labels"), np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="5 labels for 141 images"):
        load_dataset(spec.name, folder, quiet=True)


def test_wrong_image_size(tiny_bymerge):
    spec, folder, _ = tiny_bymerge
    write_idx(folder / spec.filename("test", "images"), np.zeros((47, 32, 32), np.uint8))
    with pytest.raises(DataError, match="32x32, expected 28x28"):
        load_dataset(spec.name, folder, quiet=True)


def test_root_with_family_folders(tmp_path):
    write_tiny(get_dataset("emnist-balanced"), tmp_path / "emnist-dev")
    write_tiny(get_dataset("kmnist"), tmp_path / "kmnist-dev")
    assert locate(get_dataset("emnist-balanced"), tmp_path) == tmp_path / "emnist-dev"
    assert locate(get_dataset("kmnist"), tmp_path) == tmp_path / "kmnist-dev"
    with pytest.raises(DataError, match="mnist: files not found"):
        locate(get_dataset("mnist"), tmp_path)


def test_env_var_names_the_data_dir(tiny_bymerge, monkeypatch):
    spec, folder, _ = tiny_bymerge
    monkeypatch.setenv("EDGE_EMNIST_DATA", str(folder))
    assert locate(spec) == folder


def test_no_download_and_empty_cache(tmp_path):
    with pytest.raises(DataError, match="not in the cache.*edge-emnist data download --dataset mnist"):
        locate(get_dataset("mnist"), cache_dir=tmp_path, download=False)


def test_cache_is_used_when_complete(tmp_path):
    spec = get_dataset("kmnist")
    write_tiny(spec, tmp_path / "kmnist")
    assert locate(spec, cache_dir=tmp_path, download=False) == tmp_path / "kmnist"


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'emnist-foo'; choose one of"):
        get_dataset("emnist-foo")


def test_registry_facts():
    assert list(DATASETS) == ["emnist-balanced", "emnist-byclass", "emnist-bymerge", "emnist-digits",
                              "emnist-letters", "emnist-mnist", "mnist", "kmnist"]
    assert {n: s.num_classes for n, s in DATASETS.items()} == {
        "emnist-balanced": 47, "emnist-byclass": 62, "emnist-bymerge": 47, "emnist-digits": 10,
        "emnist-letters": 26, "emnist-mnist": 10, "mnist": 10, "kmnist": 10}
    assert get_dataset("mnist").filename("test", "images") == "t10k-images-idx3-ubyte.gz"
    assert get_dataset("emnist-letters").filename("train", "labels") == "emnist-letters-train-labels-idx1-ubyte.gz"
    for spec in DATASETS.values():
        assert all(spec.official_sha256(name) for name in spec.filenames()), spec.name
        assert len(set(spec.labels)) == spec.num_classes


def test_no_download_flag_reaches_every_stage(tmp_path, monkeypatch, capsys):
    """--no-download on train (not only `data`): the dataset is loaded deep inside the stage, and must not download."""
    from edge_emnist.cli import main
    from edge_emnist.data import download as dl

    monkeypatch.delenv("EDGE_EMNIST_DATA", raising=False)
    monkeypatch.delenv("EDGE_EMNIST_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(dl, "download", lambda *a, **k: pytest.fail("downloaded despite --no-download"))
    code = main(["train", "--arch", "lenet5", "--dataset", "mnist", "--epochs", "1", "--cache-dir", str(tmp_path),
                 "--run-dir", str(tmp_path / "run"), "--no-download"])
    assert code == 2 and "not in the cache" in capsys.readouterr().err
    monkeypatch.delenv("EDGE_EMNIST_NO_DOWNLOAD", raising=False)  # main() set it for the rest of this process


def test_the_unofficial_notice_is_said_once_per_process(tiny_bymerge, capsys):
    from edge_emnist.data import load_dataset

    spec, folder, _ = tiny_bymerge
    for _ in range(3):
        load_dataset(spec.name, folder)
    assert capsys.readouterr().err.count("notice: ") == 1


def test_a_missing_file_is_named(tiny_bymerge):
    spec, folder, _ = tiny_bymerge
    (folder / spec.filename("test", "labels")).unlink()
    with pytest.raises(DataError, match=f"has 3 of its files but not {spec.filename('test', 'labels')}"):
        load_dataset(spec.name, folder, quiet=True)


def test_a_gzip_bomb_is_refused_from_its_header(tiny_bymerge):
    """A small gzip whose header declares far more images than the dataset has is refused before inflating."""
    import gzip
    import time

    spec, folder, _ = tiny_bymerge
    count = spec.official_counts["test"] + 1
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (count, 28, 28))
    with gzip.open(folder / spec.filename("test", "images"), "wb") as f:
        f.write(header)
        zeros = bytes(1 << 20)
        for _ in range(count * 784 >> 20):  # ~91 MB of zeros in ~90 KB of gzip
            f.write(zeros)
    started = time.perf_counter()
    with pytest.raises(DataError, match="refused unread"):
        load_dataset(spec.name, folder, quiet=True)
    assert time.perf_counter() - started < 2
