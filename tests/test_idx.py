import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edge_emnist.data.idx import read_idx, read_idx_shape, write_idx
from edge_emnist.errors import DataError


def one_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
def test_roundtrip_gzip_and_raw(tmp_path, name):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / name, array)
    out = read_idx(tmp_path / name, rank=3, dtype=np.uint8)
    np.testing.assert_array_equal(out, array)
    assert read_idx_shape(tmp_path / name) == (2, 28, 28)


def test_gzip_bytes_depend_on_the_array_only(tmp_path):
    """Derived datasets are fingerprinted by sha256: writing the same array twice must give the same file."""
    array = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    write_idx(tmp_path / ".tmp-123.other-name-idx3-ubyte.gz", array)  # as an atomic write names it
    assert (tmp_path / "a-idx3-ubyte.gz").read_bytes() == (tmp_path / ".tmp-123.other-name-idx3-ubyte.gz").read_bytes()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(st.sampled_from([np.uint8, np.int8, np.dtype(">i4"), np.dtype("<f4")]),
                  hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)))
def test_roundtrip_property(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("idx") / "x.idx.gz"
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert "not an IDX file" in one_line(err, path)


def test_truncated_gzip(tmp_path):
    good = tmp_path / "good.gz"
    write_idx(good, np.zeros((50, 28, 28), np.uint8) + 7)
    path = tmp_path / "truncated.gz"
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert "corrupt or truncated gzip" in one_line(err, path)


def test_declared_size_larger_than_data(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28)) + bytes(784 * 9))
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert "truncated" in one_line(err, path) and "7,840" in str(err.value)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes(5))
    with pytest.raises(DataError, match="trailing"):
        read_idx(path)


def test_rank_and_dtype_checks(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx(path, np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="rank 1.*expected rank 3"):
        read_idx(path, rank=3)
    write_idx(path, np.zeros(5, np.int8))
    with pytest.raises(DataError, match="element type int8, expected uint8"):
        read_idx(path, dtype=np.uint8)


@pytest.mark.parametrize("payload,problem", [
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x07\x01" + bytes(8), "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x03\x00\x00", "ends inside the header"),
])
def test_bad_headers(tmp_path, payload, problem):
    path = tmp_path / "x"
    path.write_bytes(payload)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert problem in one_line(err, path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope.gz")
