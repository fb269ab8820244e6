import numpy as np
import pytest

from edge_emnist.backend import tf
from edge_emnist.data.pipeline import Augment, make_dataset, random_affine, scale_images
from tests.conftest import glyph


def _data(n=40):
    labels = np.arange(n) % 10
    return np.stack([glyph(int(lab)) for lab in labels]), labels


def test_batches_are_scaled_float_with_channel():
    images, labels = _data()
    batches = list(make_dataset(images, labels, batch_size=16))
    assert [b[0].shape[0] for b in batches] == [16, 16, 8]
    x, y = batches[0]
    assert x.shape[1:] == (28, 28, 1) and x.dtype == tf.float32 and y.dtype == tf.int64
    assert float(tf.reduce_min(x)) == 0.0 and float(tf.reduce_max(x)) == 1.0
    np.testing.assert_allclose(x[0, :, :, 0].numpy(), images[0] / 255.0, atol=1e-7)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    images, labels = _data()

    def order(ds):
        return np.concatenate([y.numpy() for _, y in ds])

    ds = make_dataset(images, labels, batch_size=8, shuffle=True, seed=7)
    first, second = order(ds), order(ds)
    assert sorted(first) == sorted(labels) and not np.array_equal(first, second)
    np.testing.assert_array_equal(first, order(make_dataset(images, labels, batch_size=8, shuffle=True, seed=7)))


def test_identity_augment_changes_nothing():
    images, _ = _data(4)
    x = scale_images(images)
    out = random_affine(x, Augment(rotation_deg=0.0, shift_px=0.0, scale=0.0))
    np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-5)


def test_shift_moves_the_ink_by_at_most_the_limit():
    images, _ = _data(32)
    x = scale_images(images)
    out = random_affine(x, Augment(rotation_deg=0.0, shift_px=2.0, scale=0.0), seed=1).numpy()

    def centroid(batch):
        ys, xs = np.mgrid[:28, :28]
        mass = batch[..., 0].sum(axis=(1, 2))
        return np.stack([(batch[..., 0] * xs).sum((1, 2)) / mass, (batch[..., 0] * ys).sum((1, 2)) / mass], 1)

    moved = np.abs(centroid(out) - centroid(x.numpy()))
    assert moved.max() <= 2.0 + 1e-3 and moved.mean() > 0.2


def test_augmented_pipeline_keeps_shape_and_range():
    images, labels = _data()
    x, _ = next(iter(make_dataset(images, labels, batch_size=40, shuffle=True, augment=Augment())))
    assert x.shape == (40, 28, 28, 1)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0 + 1e-6
    assert not np.allclose(np.sort(x.numpy().ravel()), np.sort(scale_images(images).numpy().ravel()))


def test_length_mismatch():
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        make_dataset(np.zeros((4, 28, 28), np.uint8), np.zeros(3))
