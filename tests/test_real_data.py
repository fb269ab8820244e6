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
                                  "emnist-letters", "emnist-mnist"])  # the official mapping files
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
    expected = {"emnist-balanced": (15_604, 3_901), "emnist-bymerge": (93_058, 23_265),
                "emnist-letters": (16_822, 4_212), "kmnist": (8_000, 2_000)}
    for name, counts in expected.items():
        data = load_dataset(name, shared_data, quiet=True)
        assert (len(data.train), len(data.test)) == counts
        assert not data.provenance.official
        assert data.train.labels.max() == data.spec.num_classes - 1
    for absent in ("emnist-digits", "emnist-byclass"):  # emnist-dev has no byclass view (its README says why)
        assert find_local(get_dataset(absent), shared_data) is None


def test_show_on_real_data(shared_data, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "--dataset", "emnist-bymerge", "-n", "64", "-o", str(out),
                 "--data-dir", str(shared_data / "emnist-dev")]) == 0
    assert out.stat().st_size > 10_000


def test_committed_lenet5_exports_int8_within_one_point(shared_data, tmp_path):
    """The issue's bar: int8 artifacts of a model trained on emnist-dev lose at most 1 point, in plain runtimes."""
    import json
    from pathlib import Path

    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    run = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "runs" / "lenet5-emnist-bymerge"
    assert main(["export", str(run), "--quantize", "int8", "--data-dir", str(shared_data),
                 "--out-dir", str(tmp_path)]) == 0
    test = load_dataset("emnist-bymerge", shared_data, splits=("test",)).test
    x = test.images[..., None].astype(np.float32) / 255
    card = json.loads((tmp_path / "lenet5-emnist-bymerge-int8.tflite.json").read_text())
    assert card["accuracy"]["keras"] - card["accuracy"]["artifact"] <= 0.01

    interpreter = Interpreter(model_path=str(tmp_path / "lenet5-emnist-bymerge-int8.tflite"))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(x), 28, 28, 1])
    interpreter.allocate_tensors()
    scale, zero = inp["quantization"]
    interpreter.set_tensor(inp["index"], np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8))
    interpreter.invoke()
    tflite_accuracy = np.mean(interpreter.get_tensor(out["index"]).argmax(1) == test.labels)

    onnx_path = tmp_path / "lenet5-emnist-bymerge-int8.onnx"
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_accuracy = np.mean(session.run(None, {"image": x})[0].argmax(1) == test.labels)
    for accuracy in (tflite_accuracy, onnx_accuracy):
        assert accuracy >= card["accuracy"]["keras"] - 0.01
    assert tflite_accuracy == pytest.approx(card["accuracy"]["artifact"])


@pytest.mark.parametrize("name", ["emnist-bymerge", "emnist-balanced", "emnist-letters"])
def test_label_check_passes_on_every_emnist_dev_view(shared_data, name):
    """Every view emnist-dev has now pairs its images with their own labels (the old byclass/letters did not)."""
    from edge_emnist.data.sanity import check_labels

    assert check_labels(load_dataset(name, shared_data / "emnist-dev")).ok


def test_derive_letters_reproduces_the_shared_letters_view(shared_data, tmp_path):
    """`data derive-letters` on emnist-dev's bymerge gives exactly the letters view ../shared ships."""
    from edge_emnist.data.idx import read_bytes
    from edge_emnist.data.views import derive_letters

    counts = derive_letters(shared_data / "emnist-dev", tmp_path)
    assert counts == {"train": 16_822, "test": 4_212}
    letters = get_dataset("emnist-letters")
    for name in letters.filenames():  # the gzip headers differ (a file name in the shared ones); the contents not
        assert read_bytes(tmp_path / name) == read_bytes(shared_data / "emnist-dev" / name), name
    assert derive_letters(shared_data / "emnist-dev", tmp_path / "all", balanced=False) == {
        "train": 47_036, "test": 11_760}


def test_data_list_check_gives_each_present_dataset_its_verdict(shared_data, capsys):
    assert main(["data", "list", "--data-dir", str(shared_data), "--check"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[3:]}
    assert "match (1-NN" in rows["emnist-letters"] and rows["emnist-byclass"].rstrip().endswith("-")
