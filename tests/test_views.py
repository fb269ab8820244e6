"""Re-deriving the letters view from bymerge's files."""

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.data import load_dataset
from edge_emnist.data.registry import get_dataset
from edge_emnist.data.views import case_merged_classes
from tests.conftest import write_tiny


def test_every_bymerge_letter_maps_to_its_case_merged_letter():
    bymerge, letters = get_dataset("emnist-bymerge"), get_dataset("emnist-letters")
    mapping = case_merged_classes(bymerge, letters)
    assert list(mapping[:10]) == [-1] * 10  # digits have no letter
    for source_class, letter in enumerate(mapping[10:], start=10):
        assert letters.labels[letter] == bymerge.labels[source_class].upper()
    assert set(mapping[10:]) == set(range(26))  # every letter is reached
    # bymerge keeps a/A apart: both land on A
    a_classes = [c for c, label in enumerate(bymerge.labels) if label in "aA"]
    assert len(a_classes) == 2 and set(mapping[a_classes]) == {0}


def test_derive_letters_is_balanced_by_default(tmp_path, capsys):
    """Like the official letters split: the first n images of every letter in file order, n the rarest's count."""
    bymerge = get_dataset("emnist-bymerge")
    written = write_tiny(bymerge, tmp_path / "src", counts={"train": 2 * 47, "test": 47})
    out = tmp_path / "letters"
    assert main(["data", "derive-letters", "--data-dir", str(tmp_path / "src"), "--out", str(out)]) == 0
    assert "52 train / 26 test" in capsys.readouterr().out  # 2 and 1 per letter: a merged letter has one class
    letters = load_dataset("emnist-letters", out)
    assert np.bincount(letters.train.labels, minlength=26).tolist() == [2] * 26
    images, labels = written["test"]
    to_letter = case_merged_classes(bymerge, get_dataset("emnist-letters"))
    first = [int(np.flatnonzero(to_letter[labels] == letter)[0]) for letter in range(26)]
    np.testing.assert_array_equal(letters.test.images, images[sorted(first)])  # in the source's order


def test_derive_letters_all_images_writes_a_loadable_view(tmp_path, capsys):
    bymerge = get_dataset("emnist-bymerge")
    written = write_tiny(bymerge, tmp_path / "src", counts={"train": 2 * 47, "test": 47})
    out = tmp_path / "letters"
    assert main(["data", "derive-letters", "--data-dir", str(tmp_path / "src"), "--out", str(out),
                 "--all-images"]) == 0
    assert "74 train / 37 test" in capsys.readouterr().out  # 47 classes less 10 digits
    letters = load_dataset("emnist-letters", out)
    assert not letters.provenance.official
    images, labels = written["test"]
    keep = labels >= 10
    np.testing.assert_array_equal(letters.test.images, images[keep])  # upright, in the source's order
    expected = [get_dataset("emnist-letters").labels.index(bymerge.labels[c].upper()) for c in labels[keep]]
    np.testing.assert_array_equal(letters.test.labels, expected)
    assert (out / "SHA256SUMS").read_text().count("\n") == 4
    assert main(["data", "verify", "--dataset", "emnist-letters", "--data-dir", str(out)]) == 0


def test_derive_letters_without_a_source_is_one_line(tmp_path, capsys):
    code = main(["data", "derive-letters", "--data-dir", str(tmp_path), "--out", str(tmp_path / "x"),
                 "--no-download"])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "emnist-bymerge" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main(["data", "derive-letters", "--data-dir", str(tmp_path)])  # --out is required


def test_a_source_with_bad_labels_writes_nothing(tmp_path, capsys):
    from edge_emnist.data.idx import write_idx

    bymerge = get_dataset("emnist-bymerge")
    write_tiny(bymerge, tmp_path / "src", counts={"train": 47, "test": 47})
    write_idx(tmp_path / "src" / bymerge.filename("test", "labels"), np.full(47, 60, np.uint8))  # no class 60
    code = main(["data", "derive-letters", "--data-dir", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert code != 0 and "labels do not fit" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the train split was fine, but nothing of it was written
