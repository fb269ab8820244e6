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

from edge_emnist.data import load_dataset
from edge_emnist.device.cards import ANSWERS_KEPT, card_answers, card_path
from edge_emnist.device.runtimes import OrtModel, accuracy, open_artifact
from edge_emnist.targets.qemu import emulated_predictions, missing

EXPORTED = Path(__file__).resolve().parents[1] / "exported"
QUANTIZED = sorted(p for p in EXPORTED.glob("*.onnx") if not p.name.startswith(".")
                   if json.loads(card_path(p).read_text())["quantize"] in ("int8", "dynamic"))
HASWELL = "qemu-x86_64:haswell"
# Above this many MACs per image (custom_vgg's p50 and custom_resnet: 25-130 s each over the whole split on two
# AVX2 cores) the answers the card keeps on the first images stand in for scoring the whole split.
WHOLE_SPLIT_MAX_MACS = 20_000_000


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
    kept = card_answers(card)
    whole = card["model"]["macs"] <= WHOLE_SPLIT_MAX_MACS
    x = bymerge_test.images[..., None].astype(np.float32) / 255
    fused = OrtModel(path, threads=2).predict(x if whole else x[:len(kept)])  # both CI cores
    # the card's answers and figure came from another machine, possibly another CPU: the same answers here
    assert np.mean(fused[:len(kept)].argmax(1) == kept) >= 0.999
    if whole:
        assert accuracy(fused, bymerge_test.labels) == pytest.approx(card["accuracy"]["artifact"], abs=2e-4)
    if card["quantize"] == "int8":  # QDQ left unfused is float math between Q and DQ: no CPU changes it
        unfused = OrtModel(path, optimization="basic", threads=2).predict(x[:2000])
        assert np.mean(fused[:2000].argmax(1) == unfused.argmax(1)) >= 0.999


@pytest.mark.parametrize("card", sorted(EXPORTED.glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_card_keeps_its_first_answers(card):
    kept = card_answers(json.loads(card.read_text()))
    assert kept is not None and len(kept) == ANSWERS_KEPT, "python benchmarks/card_answers.py exported adds them"


SMALL = [EXPORTED / name for name in ("lenet5-emnist-bymerge-int8.onnx", "simple_cnn-emnist-bymerge-dynamic.onnx",
                                       "simple_cnn-emnist-bymerge-qat-int8.onnx")]
ARM = "qemu-aarch64:cortex-a76"


def _emulated_against_native(path: Path, target: str, test, count: int = 300) -> tuple[np.ndarray, np.ndarray, dict]:
    if missing(target):
        pytest.skip(f"{missing(target)} (`edge-emnist targets --install {target}`; .ci/run does it)")
    images, labels = test.images[:count], test.labels[:count]
    emulated, host = emulated_predictions(path, images, labels, target)
    native = open_artifact(path).predict(images[..., None].astype(np.float32) / 255)
    return emulated, native, host


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_shipped_quantized_onnx_answers_the_same_on_an_avx2_only_cpu(path, bymerge_test):
    """This machine (AVX2 or AVX-512 VNNI) against an emulated Haswell (AVX2, no VNNI): identical answers."""
    emulated, native, host = _emulated_against_native(path, HASWELL, bymerge_test)
    assert host["isa"] == ["avx", "avx2", "fma"]
    assert np.array_equal(emulated.argmax(1), native.argmax(1))
    assert np.abs(emulated - native).max() <= 1e-5


@pytest.mark.parametrize("path", SMALL[:2] + [EXPORTED / "lenet5-emnist-bymerge-int8.tflite",
                                              EXPORTED / "simple_cnn-emnist-bymerge-qat-int8.tflite"],
                         ids=lambda p: p.name)
def test_shipped_int8_artifacts_answer_the_same_on_arm(path, bymerge_test):
    """ARM's int8 kernels (sdot on a Cortex-A76, as in a Raspberry Pi 5) against this x86 CPU: the same top-1
    on every image, outputs within one int8 step (measured: identical for ONNX, 1 LSB for LiteRT)."""
    emulated, native, host = _emulated_against_native(path, ARM, bymerge_test)
    assert host["machine"] == "aarch64" and "asimddp" in host["isa"]
    assert np.array_equal(emulated.argmax(1), native.argmax(1))
    assert np.abs(emulated - native).max() <= 1 / 255 + 1e-6
