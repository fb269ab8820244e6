"""Which layer costs a run its post-training int8 accuracy? TFLite's quantization debugger gives each quantized
tensor's error against float, then the run is converted once per layer with that one layer left float (selective
quantization, `QuantizationDebugOptions(denylisted_nodes=...)`), each file scored on the run's validation split (it
chooses) and the test split (printed beside it). Calibration as `export --quantize int8` does it (500 seeded train
images); inputs and outputs stay float here, so these files are probes, not artifacts to ship.

    EDGE_EMNIST_DATA=../shared/data python benchmarks/int8_layer_probe.py RUN [OUT_DIR]
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from pathlib import Path

from edge_emnist.data import load_dataset
from edge_emnist.device.runtimes import LiteRTModel, accuracy
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.runs import calibration_sample, open_run, training_split
from edge_emnist.tf_keras_env import tf

CALIBRATION_IMAGES = 500  # export's default --calibration-size


def main(run_path: str, out_dir: Path) -> None:
    run = open_run(run_path)
    data = load_dataset(run.config.dataset, quiet=True)
    x_train, _, x_val, y_val = training_split(run.config, data)
    model = build_model(run, data.spec.num_classes)
    samples = calibration_sample(run.config, x_train, CALIBRATION_IMAGES)
    splits = {"validation": (x_val[..., None].astype("float32") / 255, y_val),
              "test": (data.test.images[..., None].astype("float32") / 255, data.test.labels)}

    def calibration():
        for i in range(len(samples)):
            yield [samples[i: i + 1]]

    def debugger(denied: list[str]):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied) if denied else None
        return tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=calibration,
                                                         debug_options=options)

    def scores(blob: bytes, name: str) -> str:
        path = out_dir / f"{name}.tflite"
        path.write_bytes(blob)
        model = LiteRTModel(path)
        return "  ".join(f"{split} {accuracy(model.predict(x), y):.4f}" for split, (x, y) in splits.items())

    everything = debugger([])
    everything.run()
    dump = io.StringIO()
    everything.layer_statistics_dump(dump)
    dump.seek(0)
    layers = list(csv.DictReader(dump))
    print(f"{run.path}: every layer int8: {scores(everything.get_nondebug_quantized_model(), 'all-int8')}")
    for i, layer in enumerate(layers):
        tensor = layer["tensor_name"]
        blob = debugger([tensor]).get_nondebug_quantized_model()
        print(f"{layer['op_name']:<16} {tensor.split(';')[0][:48]:<48} error/scale "
              f"{float(layer['mean_squared_error']) ** 0.5 / float(layer['scale']):6.3f}  left float: "
              f"{scores(blob, f'float-{i}')}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as scratch:
        main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else Path(scratch))
