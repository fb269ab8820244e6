import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_emnist.data.split import stratified_split


def test_stratified_and_seeded():
    labels = np.repeat(np.arange(5), [100, 50, 20, 10, 2])
    train, val = stratified_split(labels, 0.1, seed=3)
    assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == len(labels)
    assert np.bincount(labels[val]).tolist() == [10, 5, 2, 1, 1]
    again_train, again_val = stratified_split(labels, 0.1, seed=3)
    np.testing.assert_array_equal(val, again_val)
    _, other = stratified_split(labels, 0.1, seed=4)
    assert not np.array_equal(val, other)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=300), st.floats(0.05, 0.5), st.integers(0, 99))
def test_partition_property(raw, fraction, seed):
    labels = np.array(raw)
    train, val = stratified_split(labels, fraction, seed)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    for cls in np.unique(labels):  # a class with two or more samples keeps one on each side
        if (labels == cls).sum() >= 2:
            assert (labels[train] == cls).any() and (labels[val] == cls).any()


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(np.zeros(10), fraction)
