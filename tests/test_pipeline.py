"""The numpy input batches and the handwriting augmentation (no TensorFlow involved)."""

import numpy as np
import pytest

from edge_emnist.data import augment as aug
from edge_emnist.data.augment import Augment
from edge_emnist.data.batches import Batches, scale_images
from tests.conftest import glyph


def _data(n=40):
    labels = np.arange(n) % 10
    return np.stack([glyph(int(lab)) for lab in labels]), labels


def _centroid(batch):
    ys, xs = np.mgrid[:28, :28]
    mass = batch.sum(axis=(1, 2))
    return np.stack([(batch * xs).sum((1, 2)) / mass, (batch * ys).sum((1, 2)) / mass], 1)


def test_batches_are_scaled_float_with_channel():
    images, labels = _data()
    batches = list(Batches(images, labels, batch_size=16))
    assert [b[0].shape[0] for b in batches] == [16, 16, 8]
    x, y = batches[0]
    assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x[0, :, :, 0], images[0] / 255.0, atol=1e-7)


def test_shuffle_is_a_function_of_seed_and_epoch():
    """What makes a resumed run see the batches an uninterrupted one would have seen."""
    images, labels = _data()

    def order(batches):
        return np.concatenate([y for _, y in batches])

    batches = Batches(images, labels, batch_size=8, shuffle=True, seed=7, augment=Augment())
    first = order(batches)
    x_first = batches[0][0]
    batches.on_epoch_end()
    second = order(batches)
    assert sorted(first) == sorted(labels) and not np.array_equal(first, second)
    resumed = Batches(images, labels, batch_size=8, shuffle=True, seed=7, augment=Augment(), epoch=1)
    np.testing.assert_array_equal(second, order(resumed))
    np.testing.assert_array_equal(x_first, Batches(images, labels, batch_size=8, shuffle=True, seed=7,
                                                   augment=Augment())[0][0])
    with pytest.raises(IndexError):
        batches[len(batches)]


def test_identity_transforms_change_nothing():
    x = scale_images(_data(4)[0])
    for out in (aug.rotate(x, 0.0), aug.rescale(x, 1.0), aug.shear(x, 0.0), aug.shift(x, 0.0), aug.thicken(x, 0)):
        np.testing.assert_allclose(out, x, atol=1e-5)
    identity = Augment(rotation_deg=0, shift_px=0, scale=0, shear_deg=0, thickness_px=0, elastic_px=0)
    np.testing.assert_allclose(identity(x, np.random.default_rng(0)), x, atol=1e-5)


def test_rotation_and_scale_do_what_they_say():
    x = scale_images(_data(8)[0])
    back = aug.rotate(aug.rotate(x, 90.0), -90.0)
    np.testing.assert_allclose(back[:, 2:-2, 2:-2], x[:, 2:-2, 2:-2], atol=1e-4)  # quarter turns are exact
    assert aug.rescale(x, 0.7).sum() < 0.6 * x.sum() < aug.rescale(x, 1.2).sum()  # ink area ~ zoom^2


def test_shift_moves_the_ink_by_the_asked_distance():
    x = scale_images(_data(32)[0])
    moved = np.linalg.norm(_centroid(aug.shift(x, 2.0, seed=1)) - _centroid(x), axis=1)
    np.testing.assert_allclose(moved, 2.0, atol=0.05)
    jitter = Augment(rotation_deg=0, shift_px=2.0, scale=0, shear_deg=0, thickness_px=0, elastic_px=0)
    moved = np.abs(_centroid(jitter(x, np.random.default_rng(1))) - _centroid(x))
    assert moved.max() <= 2.0 + 1e-3 and moved.mean() > 0.2


def test_thickness_grows_and_shrinks_strokes():
    x = scale_images(_data(8)[0])
    ink = lambda batch: (batch > 0.5).sum()  # noqa: E731
    assert ink(aug.thicken(x, -1)) < ink(x) < ink(aug.thicken(x, 1)) < ink(aug.thicken(x, 2))


def test_augmented_batches_keep_shape_and_range_and_change_the_images():
    images, labels = _data()
    x, _ = Batches(images, labels, batch_size=40, shuffle=True, augment=Augment())[0]
    assert x.shape == (40, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 + 1e-6
    assert not np.allclose(np.sort(x.ravel()), np.sort(scale_images(images).ravel()))


@pytest.mark.parametrize("spec, expected", [
    ("off", None), (False, None), ("0", None), ("on", Augment()), (True, Augment()),
    ("0.5", Augment(rotation_deg=6.0, shift_px=1.0, scale=0.075, shear_deg=4.0, thickness_px=0, elastic_px=0.5)),
    ("rotation_deg=15,elastic_px=0", Augment(rotation_deg=15.0, elastic_px=0.0)),
    (Augment().to_dict(), Augment()),
])
def test_augment_specs(spec, expected):
    assert Augment.parse(spec) == expected


@pytest.mark.parametrize("spec", ["spin=3", "rotation_deg=", "-1", "rotation_deg=abc"])
def test_bad_augment_specs_are_refused(spec):
    with pytest.raises(ValueError):
        Augment.parse(spec)


def test_length_mismatch():
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        Batches(np.zeros((4, 28, 28), np.uint8), np.zeros(3))


def test_padded_batches_weigh_only_the_real_images():
    """What JAX's data-parallel training gets: every batch a multiple of the device count, padding weighted 0."""
    images = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28)
    batches = Batches(images, np.arange(10), batch_size=4, pad_to=4)
    x, y, w = batches[2]  # the last batch holds 2 real images
    assert x.shape == (4, 28, 28, 1) and list(y) == [8, 9, 8, 8] and list(w) == [1, 1, 0, 0]
    assert all(len(batch) == 3 and batch[2].sum() == 4 for batch in list(batches)[:2])
    assert sum(batch[2].sum() for batch in batches) == 10
