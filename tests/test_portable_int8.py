"""The shipped quantized ONNX artifacts score what their cards say, whatever x86 CPU runs the tests.

ONNX Runtime's uint8 x int8 kernels saturate on AVX2 without VNNI (vpmaddubsw), so an int8-weight file's
answers depend on the CPU; the shipped files store every 8-bit tensor as uint8, which every CPU computes
exactly. These tests fail on the old files on an AVX2-only host (the card accuracy, the fused/unfused
agreement) and on a VNNI host (the Haswell emulation), and pass on both with the new ones.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.bench.qemu import EMULATED_CPUS, emulated_predictions, qemu_binary
from edge_emnist.bench.runtimes import OrtModel, accuracy
from edge_emnist.data import load_dataset
from edge_emnist.export.card import card_path

EXPORTED = Path(__file__).resolve().parents[1] / "exported"
QUANTIZED = sorted(p for p in EXPORTED.glob("*.onnx")
                   if json.loads(card_path(p).read_text())["quantize"] in ("int8", "dynamic"))
HASWELL = "qemu-x86_64:haswell"


def test_there_are_shipped_quantized_onnx_files():
    assert len(QUANTIZED) >= 5


@pytest.mark.parametrize("path", QUANTIZED, ids=lambda p: p.name)
def test_shipped_quantized_onnx_holds_only_uint8(path):
    import onnx

    from edge_emnist.export.onnx_unsigned import eight_bit_types

    assert eight_bit_types(onnx.load(str(path))) == {"uint8"}


@pytest.fixture(scope="module")
def bymerge_test(shared_data_module):
    return load_dataset("emnist-bymerge", shared_data_module, splits=("test",), quiet=True).test


@pytest.fixture(scope="module")
def shared_data_module():
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "emnist-dev").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.mark.parametrize("path", QUANTIZED, ids=lambda p: p.name)
def test_shipped_quantized_onnx_scores_what_its_card_says(path, bymerge_test):
    card = json.loads(card_path(path).read_text())
    x = bymerge_test.images[..., None].astype(np.float32) / 255
    fused = OrtModel(path).predict(x)
    # the card's figure was measured on another machine, possibly another CPU: the same answers give the same score
    assert accuracy(fused, bymerge_test.labels) == pytest.approx(card["accuracy"]["artifact"], abs=2e-4)
    if card["quantize"] == "int8":  # QDQ left unfused is float math between Q and DQ: no CPU changes it
        unfused = OrtModel(path, optimization="basic").predict(x)
        assert np.mean(fused.argmax(1) == unfused.argmax(1)) >= 0.999


SMALL = [p for p in QUANTIZED if p.name.split("-")[0] in ("lenet5", "simple_cnn")][:3]


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_shipped_quantized_onnx_answers_the_same_on_an_avx2_only_cpu(path, bymerge_test):
    """This machine (AVX2 or AVX-512 VNNI) against an emulated Haswell (AVX2, no VNNI): identical answers."""
    if qemu_binary(EMULATED_CPUS[HASWELL].binary) is None:
        pytest.skip(f"QEMU not installed (`edge-emnist targets --install {HASWELL}`; .ci/run does it)")
    images, labels = bymerge_test.images[:300], bymerge_test.labels[:300]
    emulated, host = emulated_predictions(path, images, labels, HASWELL)
    native = OrtModel(path).predict(images[..., None].astype(np.float32) / 255)
    assert host["isa"] == ["avx", "avx2", "fma"]
    assert np.array_equal(emulated.argmax(1), native.argmax(1))
    assert np.abs(emulated - native).max() <= 1e-5
