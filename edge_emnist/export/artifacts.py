"""`edge-emnist export`: convert, verify through the artifact's own runtime, then (and only then) publish.

Every artifact is written under a temporary name, run on the whole test split, compared with the Keras
model and measured; only when it passes does it take its real name, followed by its model card. A failed
parity check or an interrupt leaves neither behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_emnist.bench.runtimes import LiteRTModel, OrtModel, accuracy, file_sizes, open_artifact
from edge_emnist.data import load_dataset
from edge_emnist.data.download import sha256_of
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export import card as cards
from edge_emnist.export.onnx import to_onnx, to_onnx_qat
from edge_emnist.export.tflite import IO_TYPES, to_tflite
from edge_emnist.io import atomic_path
from edge_emnist.models import create_model
from edge_emnist.models.profile import macs, trainable_params
from edge_emnist.optimize.prune import sparsity_report
from edge_emnist.runs import Run, open_run
from edge_emnist.train import calibration_sample, training_split

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
FORMATS = {"tflite": ".tflite", "onnx": ".onnx"}
# Minimum top-1 agreement with the Keras model on the test split, per quantization.
PARITY_BAR = {"none": 0.999, "fp16": 0.999, "dynamic": 0.99, "int8": 0.99}
VARIANT = {"none": "fp32", "fp16": "fp16", "dynamic": "dynamic", "int8": "int8"}


@dataclass
class ExportOptions:
    quantize: str = "int8"
    formats: tuple[str, ...] = ("tflite", "onnx")
    io_type: str = "int8"  # TFLite int8 edges: int8, uint8 or float
    calibration_size: int = 500
    out_dir: Path = Path("exported")
    eval_batch: int = 256

    def validate(self, run: Run) -> None:
        if self.quantize not in QUANTIZATIONS:
            raise EdgeEmnistError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise EdgeEmnistError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)} or all")
        if self.io_type not in IO_TYPES:
            raise EdgeEmnistError(f"--io must be one of {', '.join(IO_TYPES)}")
        if self.calibration_size < 1:
            raise EdgeEmnistError("--calibration-size must be at least 1")
        if run.qat and self.quantize != "int8":
            raise EdgeEmnistError(f"{run.path} was trained quantization-aware: export it with --quantize int8")


def artifact_name(run: Run, options: ExportOptions, fmt: str) -> str:
    parts = [run.config.arch, run.config.dataset]
    if run.tag:
        parts.append(run.tag)
    parts.append(VARIANT[options.quantize])
    if fmt == "tflite" and options.quantize == "int8" and options.io_type != "int8":
        parts.append(f"{options.io_type}io")
    return "-".join(parts) + FORMATS[fmt]


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Agreement of the top-1 class, strict argmax; disagreements that are ties in the artifact are counted
    apart: an int8 output has 256 levels, so two close classes can come out equal (argmax then takes the first).
    """
    difference = np.abs(reference - candidate)
    expected = reference.argmax(1)
    disagree = expected != candidate.argmax(1)
    tied = candidate[np.arange(len(candidate)), expected] == candidate.max(1)
    return {
        "samples": int(len(reference)),
        "top1_agreement": float(np.mean(~disagree)),
        "disagreements": int(disagree.sum()),
        "disagreements_tied": int((disagree & tied).sum()),
        "mean_abs_diff": float(difference.mean()),
        "max_abs_diff": float(difference.max()),
    }


def _convert(model, run: Run, fmt: str, options: ExportOptions, path: Path, representative: np.ndarray) -> None:
    try:
        if fmt == "tflite":
            path.write_bytes(to_tflite(model, options.quantize, representative, options.io_type))
        elif run.qat:
            to_onnx_qat(model, path)
        else:
            to_onnx(model, path, options.quantize, representative)
    except EdgeEmnistError:
        raise
    except Exception as error:  # converters raise many types; the user needs one line, not a trace
        lines = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
        what = f"{fmt} conversion of {run.config.arch} ({options.quantize})"
        raise EdgeEmnistError(f"{what} failed: {lines[0]}") from None


def _io_specs(runtime: LiteRTModel | OrtModel) -> tuple[dict, dict]:
    if isinstance(runtime, LiteRTModel):
        i, o = runtime.input, runtime.output
        return (cards.tensor_spec(i["name"], i["shape_signature"], i["dtype"], i["quantization"]),
                cards.tensor_spec(o["name"], o["shape_signature"], o["dtype"], o["quantization"]))
    i, o = runtime.session.get_inputs()[0], runtime.session.get_outputs()[0]
    as_np = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
    return (cards.tensor_spec(i.name, _dims(i.shape), as_np.get(i.type, np.float32), None),
            cards.tensor_spec(o.name, _dims(o.shape), as_np.get(o.type, np.float32), None))


def _dims(shape) -> list[int]:
    """ONNX names its dynamic batch dimension with a string; the card says -1 as TFLite does."""
    return [d if isinstance(d, int) else -1 for d in shape]


def export_run(run_dir: str | Path, options: ExportOptions, *, data_dir=None, cache_dir=None,
               log=print) -> list[Path]:
    """Export one run in every requested format; returns the artifact paths (each has a .json card beside it)."""
    run = open_run(run_dir)
    options.validate(run)
    data = load_dataset(run.config.dataset, data_dir, cache_dir)
    model = run.build_model(data.spec.num_classes)
    x_train, _, _, _ = training_split(run.config, data)
    representative = calibration_sample(run.config, x_train, options.calibration_size)
    test_images = data.test.images[..., None].astype(np.float32) / 255.0
    test_labels = data.test.labels
    log(f"{run.path}: Keras reference on {len(test_labels):,} test images")
    reference = model.predict(test_images, batch_size=options.eval_batch, verbose=0)
    keras_accuracy = accuracy(reference, test_labels)
    sparsity = sparsity_report(model)
    plain = create_model(run.config.arch, data.spec.num_classes, **run.config.model_options)  # no QAT wrappers
    profile = {"trainable_params": trainable_params(plain), "macs": macs(plain)}

    written = []
    for fmt in options.formats:
        path = options.out_dir / artifact_name(run, options, fmt)
        started = time.perf_counter()
        with atomic_path(path) as tmp:
            _convert(model, run, fmt, options, tmp, representative)
            runtime = open_artifact(tmp)
            probabilities = runtime.predict(test_images, batch_size=options.eval_batch)
            check = parity(reference, probabilities)
            bar = PARITY_BAR[options.quantize]
            check["required_top1_agreement"] = bar
            if check["top1_agreement"] < bar:
                raise EdgeEmnistError(
                    f"{path.name} failed parity: top-1 agreement {check['top1_agreement']:.4%} with the Keras "
                    f"model, below the {bar:.1%} bar ({check['disagreements_tied']} of {check['disagreements']} "
                    f"disagreements are ties in its output, max output difference {check['max_abs_diff']:.3g}); "
                    "nothing was written. Quantization-aware training (`edge-emnist qat RUN`) usually closes the gap")
            input_spec, output_spec = _io_specs(runtime)
            card = {
                "artifact": path.name,
                "format": fmt,
                "quantize": options.quantize,
                "variant": VARIANT[options.quantize],
                "arch": run.config.arch,
                "dataset": run.config.dataset,
                "model": profile,
                "labels": cards.labels_of(data.spec),
                "input": cards.input_section(input_spec, data.spec),
                "output": {**output_spec, "meaning": "softmax probabilities over the labels, in label order"},
                "source": {
                    "run": str(run.path),
                    "weights": str(run.weights),
                    "weights_sha256": sha256_of(run.weights),
                    "optimization": {k: v for k, v in run.optimization.items() if k != "history"} or None,
                    "data_fingerprint": data.provenance.fingerprint,
                    "data_official": data.provenance.official,
                },
                "sparsity": {"total": sparsity["total"], "zeros": sparsity["zeros"],
                             "kernel_weights": sparsity["kernel_weights"]},
                "size": file_sizes(tmp),
                "parity": check,
                "accuracy": {"split": "test", "images": int(len(test_labels)),
                             "artifact": accuracy(probabilities, test_labels), "keras": keras_accuracy},
                "export_seconds": round(time.perf_counter() - started, 2),
                "tools": cards.tool_versions(),
            }
            with atomic_path(cards.card_path(path)) as card_tmp:
                card_tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        acc = card["accuracy"]
        log(f"wrote {path} ({card['size']['bytes'] / 1024:.0f} KiB, gzip {card['size']['gzip_bytes'] / 1024:.0f} KiB): "
            f"test accuracy {acc['artifact']:.4f} vs Keras {acc['keras']:.4f}, "
            f"top-1 agreement {check['top1_agreement']:.4%}")
        written.append(path)
    return written
