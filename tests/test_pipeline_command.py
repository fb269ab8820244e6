"""`edge-emnist pipeline` end to end on tiny data: every stage, the pick, and resuming after an interruption."""

import json
from dataclasses import replace

import pytest

from edge_emnist.cli import main
from edge_emnist.data.registry import get_dataset
from edge_emnist.pipeline import STATE_FILE, Pipeline
from tests.conftest import write_tiny


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-data")
    write_tiny(get_dataset("mnist"), root, counts={"train": 600, "test": 200}, noise=90)
    return root


def command(data, out, *extra):
    return ["pipeline", "--arch", "lenet5", "--dataset", "mnist", "--epochs", "3", "--batch-size", "32",
            "--runs", "50", "--out", str(out), "--data-dir", str(data), *extra]


@pytest.fixture(scope="module")
def interrupted(data, tmp_path_factory):
    """A pipeline stopped by Ctrl-C at its export stage, with what it printed: train, prune and QAT are done once
    for the module, and each test resumes its own copy."""
    import contextlib
    import io

    def ctrl_c(self, arch):
        raise KeyboardInterrupt

    out = tmp_path_factory.mktemp("interrupted") / "pipe"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(Pipeline, "_export", ctrl_c)
        code = main(command(data, out))
    return out, code, printed.getvalue()


def resumable_copy(interrupted, tmp_path):
    import shutil

    return shutil.copytree(interrupted[0], tmp_path / "pipe")


def test_pipeline_interrupted_then_resumed(data, interrupted, tmp_path, capsys, monkeypatch):
    _, code, first = interrupted
    assert code == 130
    out = resumable_copy(interrupted, tmp_path)
    state = json.loads((out / STATE_FILE).read_text())
    assert list(state["done"]) == ["train:lenet5", "prune:lenet5", "qat:lenet5"]
    assert "plan for" in first and "0 of 8 stages done" in first

    trained = []
    monkeypatch.setattr(Pipeline, "_train", lambda self, arch: trained.append(arch) or {})
    assert main(command(data, out)) == 0
    assert trained == []  # finished stages are skipped, not re-run
    printed = capsys.readouterr().out
    assert "3 of 8 stages done" in printed and "[done]" in printed
    assert "picked " in printed and "shipping " in printed and "report: " in printed

    state = json.loads((out / STATE_FILE).read_text())
    assert list(state["done"]) == ["train:lenet5", "prune:lenet5", "qat:lenet5", "export:lenet5", "bench",
                                   "profile", "report", "pick"]
    names = {p.split("/")[-1] for p in state["done"]["export:lenet5"]["artifacts"]}
    for variant in ("fp32", "fp16", "dynamic", "p50-fp32", "p50-qat-int8"):
        assert {f"lenet5-mnist-{variant}.tflite", f"lenet5-mnist-{variant}.onnx"} <= names
    # post-training int8 is either exported or refused with its parity reason, never silently missing
    ptq = {"lenet5-mnist-int8.tflite", "lenet5-mnist-int8.onnx"}
    assert ptq <= names or state["done"]["export:lenet5"]["refused"]

    records = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert {r["artifact"] for r in records} == names and all(r["latency"]["runs"] in (50,) for r in records
                                                              if r["batch"] == 1)
    assert (out / "report" / "report.md").exists() and list((out / "report").glob("pareto-*.png"))
    profiles = [json.loads(line) for line in (out / "profiles.jsonl").read_text().splitlines()]
    assert {r["artifact"] for r in profiles if r.get("kind") == "profile"} == names
    assert "## Where the time goes" in (out / "report" / "report.md").read_text()
    pick = state["done"]["pick"]
    picked = out / "picked" / pick["artifact"].split("/")[-1]
    assert picked.exists() and picked.with_name(picked.name + ".json").exists()
    assert "knee" in (out / "picked" / "why.txt").read_text()


def test_refused_artifacts_never_stop_the_pipeline(data, interrupted, tmp_path, capsys, monkeypatch):
    """An artifact below its parity bar is reported and skipped; the pipeline fails only with nothing to pick."""
    from edge_emnist.device.formats import QUANTIZATIONS

    out = resumable_copy(interrupted, tmp_path)
    for quantize in QUANTIZATIONS:  # nothing passes
        monkeypatch.setitem(QUANTIZATIONS, quantize, replace(QUANTIZATIONS[quantize], parity_bar=1.01))
    assert main(command(data, out)) == 2
    assert "nothing to pick from: no artifact was measured (12 refused at export" in capsys.readouterr().err

    # float32 passes again; the quantized ones still fail
    monkeypatch.setitem(QUANTIZATIONS, "none", replace(QUANTIZATIONS["none"], parity_bar=0.999))
    state = json.loads((out / STATE_FILE).read_text())
    for stage in ("export:lenet5", "bench", "profile", "report"):
        state["done"].pop(stage)
    (out / STATE_FILE).write_text(json.dumps(state))
    assert main(command(data, out)) == 0
    printed = capsys.readouterr().out
    assert "picked lenet5-mnist-" in printed and "-fp32." in printed.split("picked ")[1].splitlines()[0]
    report = (out / "report" / "report.md").read_text()
    assert "## Refused at export" in report and "| lenet5-mnist-p50-qat-int8.onnx |" in report


def test_pipeline_refuses_other_settings_in_the_same_folder(data, tmp_path, capsys):
    out = tmp_path / "pipe"
    out.mkdir()
    (out / STATE_FILE).write_text(json.dumps({"settings": {"epochs": 99}, "done": {}}))
    assert main(command(data, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a pipeline with other settings" in err[0] and "epochs" in err[0]


@pytest.mark.parametrize("argv, message", [
    (["--arch", "alexnet"], "unknown architecture 'alexnet'"),
    (["--sparsity", "1.5"], "sparsity must be between 0 and 1"),
])
def test_pipeline_bad_arguments(data, tmp_path, capsys, argv, message):
    try:
        code = main(command(data, tmp_path / "p", *argv))
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_second_pipeline_on_the_same_out_says_who_holds_it(data, tmp_path, capsys):
    from edge_emnist.io import folder_lock

    out = tmp_path / "pipe"
    with folder_lock(out):  # as a running pipeline holds it
        assert main(command(data, out)) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use by process " in err and "edge-emnist" in err
    assert not (out / STATE_FILE).exists()
