"""Issue 18: class groups, pen-stroke characters, the robustness benchmark, its report and pick constraint."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_emnist.cli import main
from edge_emnist.device.classes import class_groups, class_index, restrict
from edge_emnist.robustness.conditions import DEFAULT_CONDITIONS, FAMILIES, transformed
from edge_emnist.robustness.strokes import TEMPLATES, stroke_images

EXPORTED = Path(__file__).resolve().parents[1] / "exported"
LENET_INT8 = EXPORTED / "lenet5-emnist-bymerge-int8.tflite"
BYMERGE_LABELS = json.loads((EXPORTED / "lenet5-emnist-bymerge-fp32.tflite.json").read_text())["labels"]


def test_class_groups_of_bymerge_and_letters():
    groups = class_groups(BYMERGE_LABELS)
    assert groups["digits"] == list(range(10)) and groups["uppercase"] == list(range(10, 36))
    assert [BYMERGE_LABELS[str(i)] for i in groups["lowercase"]] == list("abdefghnqrt")
    letters = {str(i): chr(ord("a") + i) for i in range(26)}
    assert set(class_groups(letters)) == {"letters", "lowercase"}
    assert class_index(BYMERGE_LABELS, "C") == 12 and class_index(BYMERGE_LABELS, "c") == 12  # merged by case
    assert class_index(letters, "E") == 4 and class_index(BYMERGE_LABELS, "?") is None


def test_restricting_to_a_group_takes_the_best_member():
    probabilities = np.zeros((2, 47))
    probabilities[0, [24, 0]] = [0.7, 0.2]  # "O" beats "0" over all classes; digits only says 0
    probabilities[1, [3, 5]] = [0.1, 0.3]
    assert list(restrict(probabilities, list(range(10)))) == [0, 5]


def test_pen_strokes_are_seeded_upright_characters():
    images, labels = stroke_images(per_label=2, seed=3)
    assert images.shape == (2 * len(TEMPLATES), 28, 28) and images.dtype == np.float32
    assert labels[:2] == ["0", "0"] and set(labels) == set(TEMPLATES)
    assert images.max() == pytest.approx(1.0) and images.min() >= 0.0
    again, _ = stroke_images(per_label=2, seed=3)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, stroke_images(per_label=2, seed=4)[0])
    # "1" is a tall thin character: its ink spans most rows but few columns
    one = images[labels.index("1")]
    assert (one.max(axis=1) > 0.5).sum() > 2 * (one.max(axis=0) > 0.5).sum()


def test_every_family_has_its_identity_and_the_default_conditions():
    images = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)
    for family in FAMILIES.values():
        assert family.identity in family.strengths
        assert transformed(images, family.name, family.identity) is images
    for family, strength in DEFAULT_CONDITIONS:
        assert strength in FAMILIES[family].strengths
        assert not np.allclose(transformed(images, family, strength), images)


def test_robustness_command_on_a_shipped_model(shared_data, tmp_path, capsys):
    """The normal path on real data: one record, every condition, MNIST digits-only not below all classes."""
    if not LENET_INT8.exists():
        pytest.skip("shipped LeNet-5 int8 not present")
    results = tmp_path / "robustness.jsonl"
    card = Path(f"{LENET_INT8}.json")  # a shell glob (exported/lenet5-*-int8.tflite*) brings the card along
    code = main(["robustness", str(LENET_INT8), str(card), "--images", "200", "--results", str(results),
                 "--data-dir", str(shared_data), "--threads", "1"])
    assert code == 0
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["artifact"] == LENET_INT8.name and record["runtime"] == "litert"
    assert len(record["conditions"]) == sum(len(f.strengths) for f in FAMILIES.values())
    assert all(c["images"] == 200 for c in record["conditions"])
    clean = [c["accuracy"] for c in record["conditions"] if c["strength"] == FAMILIES[c["family"]].identity]
    assert len(set(clean)) == 1 and record["clean_accuracy"] == clean[0] > 0.75  # the identities agree
    worst_rotation = min(c["accuracy"] for c in record["conditions"] if c["family"] == "rotation")
    assert worst_rotation < clean[0]
    mnist = record["mnist"]
    assert mnist["images"] == 10_000 and mnist["digits_only_accuracy"] >= mnist["accuracy"] > 0.5
    assert record["strokes"]["images"] == 20 * len(TEMPLATES) and record["strokes"]["accuracy"] > 0.5
    assert record["target"].startswith("cpu:") and record["artifact_sha256"]

    # the report draws the curves and the table; pick takes the robustness constraint
    capsys.readouterr()
    assert main(["report", "--robustness", str(results), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Robustness" in text and (tmp_path / "report" / "robustness.png").stat().st_size > 10_000
    assert f"| {LENET_INT8.name} | 200 (10,000) | {record['clean_accuracy']:.4f} |" in text


@pytest.mark.parametrize("argv, message", [
    (["robustness", "nothing.tflite"], "no artifact at nothing.tflite"),
    (["robustness", "README.md"], "not a .tflite or .onnx artifact"),
    (["robustness", "{empty}"], "no .tflite or .onnx artifacts in"),
    (["robustness", "{cardless}"], "model.tflite.json is missing"),
    (["robustness", str(LENET_INT8), "--images", "50"], "must be at least 100"),
    (["robustness", str(LENET_INT8), "--mnist-images", "10"], "must be at least 100"),
])
def test_robustness_bad_inputs_are_one_line(argv, message, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cardless = tmp_path / "model.tflite"
    if LENET_INT8.exists():
        shutil.copy(LENET_INT8, cardless)
    else:
        cardless.write_bytes(b"x")
    argv = [a.format(empty=empty, cardless=cardless) for a in argv]
    assert main([*argv, "--results", str(tmp_path / "r.jsonl")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()  # nothing half-written


def _bench(artifact, accuracy, p90, sha):
    return {"schema": 2, "artifact": artifact, "runtime": "litert", "settings": {"threads": 1}, "batch": 1,
            "accuracy": accuracy, "size_bytes": 1024, "gzip_bytes": 1000, "target": "cpu:a-avx2",
            "latency": {"p90_ms": p90, "p50_ms": p90, "p99_ms": p90, "mean_ms": p90, "runs": 100},
            "dataset": "emnist-bymerge", "artifact_sha256": sha, "card": "ok"}


def _robust(artifact, robust, sha):
    return {"kind": "robustness", "artifact": artifact, "artifact_sha256": sha, "robust_accuracy": robust}


def test_pick_with_a_robustness_floor():
    from edge_emnist.errors import EdgeEmnistError
    from edge_emnist.report import robustness
    from edge_emnist.report.pick import Constraints, pick

    records = [_bench("sharp.tflite", 0.90, 0.05, "s1"), _bench("steady.tflite", 0.88, 0.05, "s2"),
               _bench("unmeasured.tflite", 0.95, 0.01, "s3"), _bench("stale.tflite", 0.93, 0.01, "new")]
    robustness.attach(records, robustness.current([_robust("sharp.tflite", 0.70, "s1"),
                                                   _robust("steady.tflite", 0.80, "s2"),
                                                   _robust("stale.tflite", 0.9, "old")]))
    chosen, why = pick(records, "cpu", Constraints(min_robust_accuracy=0.75))
    assert chosen["artifact"] == "steady.tflite"
    assert "robust accuracy 0.7000 < 0.75" in why and "robustness not measured" in why
    with pytest.raises(EdgeEmnistError, match="closest: steady.tflite"):
        pick(records, "cpu", Constraints(min_robust_accuracy=0.85))


def test_pick_robustness_floor_without_records_says_what_to_run(tmp_path, capsys, monkeypatch):
    results = tmp_path / "bench.jsonl"
    results.write_text(json.dumps(_bench("a.tflite", 0.9, 0.05, "s")) + "\n")
    monkeypatch.chdir(tmp_path)  # no committed robustness file here
    assert main(["pick", "--results", str(results), "--min-robust-accuracy", "0.8", "--target", "cpu"]) == 2
    assert "needs robustness records: run `edge-emnist robustness" in capsys.readouterr().err
