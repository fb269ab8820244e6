import numpy as np
import pytest

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.models import create_model, list_models, register


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("arch,options,expected", [
    ("lenet5", {}, 64_851),  # the study's Table 9
    ("lenet5_relu", {}, 64_851),
    ("simple_cnn", {}, 229_807),
    ("custom_resnet", {}, 361_807),
    ("custom_vgg", {}, 1_693_903),
    ("resnet50", {"channels": 3}, 23_630_895),  # the study's count
    ("resnet50", {}, 23_624_623),
    ("edgenet", {}, 26_463),  # the compact family at its default shape
    ("edgenet", {"separable": True, "width": 0.5}, 2_639),
])
def test_trainable_parameters_at_47_classes(arch, options, expected):
    assert trainable(create_model(arch, 47, **options)) == expected


@pytest.mark.parametrize("arch", ["lenet5", "simple_cnn", "custom_resnet", "custom_vgg"])
def test_forward_pass_is_a_distribution(arch):
    model = create_model(arch, 10)
    out = model(np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)).numpy()
    assert out.shape == (2, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_resnet50_resizes_for_the_second_study():
    model = create_model("resnet50", 10, input_size=224)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.get_layer("resize_to_224").output_shape == (None, 224, 224, 1)


def test_resnet50_rejects_bad_options():
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        create_model("resnet50", 10, channels=2)
    with pytest.raises(ValueError, match="at least 32x32"):
        create_model("resnet50", 10, input_size=28)


def test_every_listed_architecture_registers_itself():
    from edge_emnist.models import model_entry

    assert [model_entry(name).name for name in list_models()] == list_models()


def test_listing_architectures_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, edge_emnist.cli as c; c.build_parser(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_registry():
    assert list_models() == ["lenet5", "lenet5_relu", "simple_cnn", "custom_resnet", "custom_vgg", "resnet50",
                             "edgenet"]
    with pytest.raises(EdgeEmnistError, match="unknown architecture 'vgg99'; choose one of: lenet5"):
        create_model("vgg99", 10)
    create_model("lenet5", 10)  # make sure lenet5 is registered before registering it again
    with pytest.raises(ValueError, match="registered twice"):
        register("lenet5")(lambda num_classes: None)


def test_macs_count_convolutions_and_dense_layers():
    from edge_emnist.models.cost import macs

    # C1 28*28*6*25 + C3 10*10*16*150 + dense 400*120 + 120*84 + 84*47
    assert macs(create_model("lenet5", 47)) == 117_600 + 240_000 + 48_000 + 10_080 + 3_948


def test_models_command_lists_every_architecture(capsys):
    from edge_emnist.cli import main

    assert main(["models", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| lenet5 | 64,851 | 419,628 |" in out and out.count("\n| ") == 7


def test_kept_profiles_match_the_models():
    """`edge-emnist models` lists from models/costs.json (no TensorFlow): it must say what the models are.
    After changing an architecture: python -m edge_emnist.models.cost"""
    from edge_emnist.models.cost import cached_costs, compute_profiles

    assert cached_costs() == compute_profiles()


def test_models_command_computes_other_class_counts(capsys):
    from edge_emnist.cli import main

    assert main(["models", "--classes", "5"]) == 0
    assert "61,281" in capsys.readouterr().out  # LeNet-5 at 5 classes: 64,851 - 42 x 85


@pytest.mark.parametrize("arch", list_models())
def test_weights_pass_from_keras3_to_tf_keras_unchanged(arch, tmp_path):
    """Keras 3 trains, tf_keras prunes, quantizes and exports: one model file builds in both, and a Keras 3
    `.weights.h5` loads into the tf_keras model with the same predictions."""
    from edge_emnist.keras3 import load_keras

    keras3 = load_keras()
    trained = create_model(arch, 47, keras=keras3)
    rng = np.random.default_rng(0)
    trained.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in trained.get_weights()])
    trained.save_weights(str(tmp_path / "k3.weights.h5"))
    exported = create_model(arch, 47)  # tf_keras
    assert type(exported).__module__.startswith("tf_keras") and not type(trained).__module__.startswith("tf_keras")
    exported.load_weights(str(tmp_path / "k3.weights.h5"))
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(exported.predict(x, verbose=0), np.asarray(trained.predict(x, verbose=0)),
                               atol=1e-5)


def test_edgenet_cost_is_known_from_its_shape_before_training():
    """The family's parameters and MACs follow from its numbers alone: separable blocks and a narrower width cost
    less, a deeper or wider net more, and the builder refuses a shape it cannot make."""
    from edge_emnist.models.cost import macs, trainable_params
    from edge_emnist.models.edgenet import channels

    def cost(**options):
        model = create_model("edgenet", 47, **options)
        return trainable_params(model), macs(model)

    base = cost()
    assert cost(separable=True)[1] < base[1] / 3 and cost(width=0.5)[1] < base[1] / 2
    assert cost(depths=(2, 2, 2))[1] > base[1] and cost(head=64)[0] > base[0]
    # the first stage by hand: 28x28 outputs x (3x3 kernel x 1 channel) x 16 filters, no bias (batch norm has it)
    first = create_model("edgenet", 47).get_layer("s1b1_conv")
    assert first.kernel.shape == (3, 3, 1, 16) and not first.use_bias
    assert channels(16, 0.3) == 4 and channels(64, 1.5) == 96
    with pytest.raises(ValueError, match="three stages"):
        create_model("edgenet", 47, depths=(1, 1))
    # the flatten head keeps 3x3 positions: 9x the dense inputs of global pooling, for a few MACs more
    flat = cost(pool="flatten")
    assert flat[0] == base[0] + 8 * 64 * 47 and flat[1] - base[1] == 8 * 64 * 47
    assert create_model("edgenet", 47, pool="flatten").get_layer("flatten").output_shape[-1] == 3 * 3 * 64
    with pytest.raises(ValueError, match="pool must be one of"):
        create_model("edgenet", 47, pool="mean")
    # a strided stem: the first convolution at 14x14 (a quarter of its MACs), no first pool, the same later stages
    strided = create_model("edgenet", 47, stem_stride=2)
    assert strided.get_layer("s1b1_conv").output_shape[1:3] == (14, 14)
    assert "pool1" not in [layer.name for layer in strided.layers]
    assert cost(stem_stride=2) == (base[0], base[1] - 3 * 28 * 28 * 9 * 16 // 4)
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        create_model("edgenet", 47, stem_stride=3)


def test_model_options_are_parsed_by_the_builders_own_defaults():
    from edge_emnist.models import parse_model_options

    options = parse_model_options("edgenet", ["width=0.5", "depths=1,2,2", "separable=true", "head=32"])
    assert options == {"width": 0.5, "depths": (1, 2, 2), "separable": True, "head": 32}
    with pytest.raises(EdgeEmnistError, match="edgenet takes the options"):
        parse_model_options("edgenet", ["colour=red"])
    with pytest.raises(EdgeEmnistError, match="is not like its default"):
        parse_model_options("edgenet", ["separable=maybe"])
