"""Structured pruning: whole filters removed, a smaller dense model rebuilt, and that model through export."""

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from edge_emnist.cli import main
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.artifacts import ExportOptions, export_run
from edge_emnist.models import create_model
from edge_emnist.models.cost import macs
from edge_emnist.optimize import structured
from edge_emnist.optimize.config import PruneConfig
from edge_emnist.optimize.finetune import optimize_run
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.runs import open_run
from tests.conftest import trained_tiny_lenet5


def _randomize_batch_norms(model, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.random(gamma.shape) + 0.5, 0.1 * rng.standard_normal(beta.shape),
                               0.1 * rng.standard_normal(mean.shape), rng.random(var.shape) + 0.5])


def _silence_removed_channels(model, kept) -> None:
    """Zero every consumer weight that reads a removed channel: the full model then computes what the narrowed
    one does, so the two must agree to float precision (which proves the index bookkeeping, flatten included)."""
    for group in structured.prunable_groups(model):
        consumer = model.get_layer(group.consumer)
        kernel, *rest = consumer.get_weights()
        width = structured._width(model.get_layer(group.producer))
        removed = np.setdiff1d(np.arange(width), kept[group.producer])
        if group.flatten:
            height, cols, channels = model.get_layer(group.flatten).input_shape[1:]
            removed = (np.arange(height * cols)[:, None] * channels + removed[None, :]).reshape(-1)
        if kernel.ndim == 4:
            kernel[:, :, removed, :] = 0
        else:
            kernel[removed, :] = 0
        consumer.set_weights([kernel, *rest])


@pytest.mark.parametrize("arch, options", [
    ("lenet5", {}), ("simple_cnn", {}), ("custom_resnet", {}), ("edgenet", {"separable": True, "head": 16}),
])
def test_narrowed_model_computes_what_the_kept_filters_did(arch, options):
    model = create_model(arch, 47, **options)
    _randomize_batch_norms(model)
    plan, kept = structured.choose(model, 0.5)
    _silence_removed_channels(model, kept)
    narrowed = structured.narrow(model, plan)
    structured.transfer(model, narrowed, kept)
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(narrowed.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    assert macs(narrowed) < (0.55 if arch == "custom_resnet" else 0.5) * macs(model)  # resnet: inner convs only


def test_residual_adds_and_the_classifier_are_left_whole():
    model = create_model("custom_resnet", 47)
    producers = {group.producer for group in structured.prunable_groups(model)}
    assert producers == {f"stage{s}_block{b}_conv1" for s, blocks in ((1, 3), (2, 2)) for b in range(1, blocks + 1)}
    assert "logits" not in {group.producer for group in structured.prunable_groups(create_model("lenet5", 47))}


def test_filters_with_the_smallest_l1_norm_go_first():
    model = create_model("lenet5", 10)
    kernel, bias = model.get_layer("c1").get_weights()
    kernel[..., [1, 4]] *= 1e-3  # two nearly dead filters
    model.get_layer("c1").set_weights([kernel, bias])
    plan, kept = structured.choose(model, 1 / 3)
    assert plan["c1"] == 4 and 1 not in kept["c1"] and 4 not in kept["c1"]


def test_batch_norm_criterion_reads_the_scale():
    model = create_model("edgenet", 10)
    gamma, beta, mean, var = model.get_layer("s1b1_bn").get_weights()
    gamma[:8] = 1e-3
    model.get_layer("s1b1_bn").set_weights([gamma, beta, mean, var])
    _, kept = structured.choose(model, 0.5, "bn")
    assert sorted(kept["s1b1_conv"]) == list(range(8, 16))


@pytest.mark.parametrize("ratio, criterion, message", [
    (0.0, "l1", "between 0 and 1"), (1.0, "l1", "between 0 and 1"), (float("nan"), "l1", "between 0 and 1"),
    (0.5, "random", "criterion"),
])
def test_bad_structured_settings(ratio, criterion, message):
    with pytest.raises(EdgeEmnistError, match=message):
        structured.choose(create_model("lenet5", 10), ratio, criterion)


def test_a_plan_naming_missing_layers_is_refused():
    with pytest.raises(EdgeEmnistError, match="does not have"):
        structured.narrow(create_model("lenet5", 10), {"conv_that_is_not_there": 3})


def test_structured_and_m_by_n_do_not_combine():
    with pytest.raises(EdgeEmnistError, match="does not combine"):
        PruneConfig(structured=0.5, m_by_n="2:4").validate()


@pytest.mark.parametrize("value", ["0", "1", "1.5", "nan", "half"])
def test_bad_structured_share_is_a_usage_error(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", str(tmp_path), "--structured", value])
    assert exit_info.value.code == 2 and "--structured" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_tiny_lenet5(tmp_path_factory.mktemp("structured"))


def test_structured_run_rebuilds_narrowed_and_exports_smaller_kernels(trained, tmp_path, capsys):
    out = trained / "run-s50"
    code = main(["prune", str(trained / "run"), "--structured", "0.5", "--epochs", "2", "--lr", "1e-3",
                 "--output", str(out), "--data-dir", str(trained / "data")])
    printed = capsys.readouterr().out
    assert code == 0 and "x fewer)" in printed and "c3" in printed
    run = open_run(out)
    assert run.tag == "s50" and run.filter_plan == {"c1": 3, "c3": 8, "c5": 60, "f6": 42}
    assert not run.has_zeros  # nothing for QAT to preserve
    model = build_model(run, 10)
    assert model.get_layer("c3").filters == 8 and model.get_layer("c5").units == 60
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["filters"]["macs"] < 0.4 * metrics["filters"]["macs_before"]
    [path] = export_run(out, ExportOptions(quantize="none", formats=["tflite"], out_dir=tmp_path),
                        data_dir=trained / "data", log=lambda _: None)
    assert path.name == "lenet5-mnist-s50-fp32.tflite"
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["model"] == {"trainable_params": metrics["filters"]["params"], "macs": metrics["filters"]["macs"]}
    interpreter = Interpreter(model_path=str(path))
    shapes = [tuple(d["shape"]) for d in interpreter.get_tensor_details() if len(d["shape"]) == 4 and d["shape"][0] > 1]
    assert (8, 5, 5, 3) in shapes  # c3's kernel: 8 filters over c1's 3 kept channels (OHWI in TFLite)


def test_qat_after_structured_pruning_exports_int8(trained, tmp_path):
    if not (trained / "run-s50").exists():
        optimize_run(trained / "run", prune=PruneConfig(structured=0.5), epochs=1, lr=1e-3,
                     output=trained / "run-s50", data_dir=trained / "data", verbose=0)
    optimize_run(trained / "run-s50", qat=True, epochs=1, output=trained / "run-s50-qat", data_dir=trained / "data",
                 verbose=0)
    run = open_run(trained / "run-s50-qat")
    assert run.tag == "s50-qat" and not run.optimization["qat"]["prune_preserving"]
    [path] = export_run(trained / "run-s50-qat", ExportOptions(quantize="int8", formats=["tflite"], out_dir=tmp_path),
                        data_dir=trained / "data", log=lambda _: None)
    assert path.name == "lenet5-mnist-s50-qat-int8.tflite"


def test_structured_fine_tuning_keeps_its_best_validation_epoch_under_a_cosine_lr(trained, tmp_path):
    out = tmp_path / "run-s50-cosine"
    metrics = optimize_run(trained / "run", prune=PruneConfig(structured=0.5), epochs=3, lr=3e-3,
                           lr_schedule="cosine", output=out, data_dir=trained / "data", verbose=0)
    history = json.loads((out / "optimization.json").read_text())["history"]
    assert [row["lr"] for row in history] == pytest.approx([3e-3, 2.25e-3, 0.75e-3], rel=1e-3)
    best = max(history, key=lambda row: row["val_accuracy"])
    assert [row["kept"] for row in history] == [row is best for row in history]
    assert metrics["val_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)  # those weights, not the last's
    with pytest.raises(EdgeEmnistError, match="constant or cosine"):
        optimize_run(trained / "run", prune=PruneConfig(structured=0.5), lr_schedule="plateau",
                     output=tmp_path / "x", data_dir=trained / "data", verbose=0)


def test_the_criterion_is_in_the_name_unless_it_is_the_default():
    from edge_emnist.optimize.finetune import default_output
    from edge_emnist.runs import optimization_tag

    assert optimization_tag(None, None, False, 0.5) == optimization_tag(None, None, False, 0.5, "l1") == "s50"
    assert optimization_tag(None, None, True, 0.5, "bn") == "s50bn-qat"
    assert default_output("runs/x", PruneConfig(structured=0.25, criterion="bn"), False).name == "x-s25bn"
