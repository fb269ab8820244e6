"""`edge-emnist export`: convert, verify through the artifact's own runtime, then (and only then) publish.

Every artifact is written under a temporary name, run on the whole test split, compared with the Keras
model and measured; only when it passes does it take its real name, followed by its model card. The card
holds the artifact's sha256, so a card is valid only beside the very file it describes: a crash between the
two renames leaves a new artifact beside an old card, which every reader (`artifact_is_current`) rejects, so
the pair counts as neither. A failed parity check or an interrupt leaves nothing behind; a failed parity check
is recorded, with its numbers, in the output folder's `refused.jsonl`.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import numpy as np

from edge_emnist.data import load_dataset
from edge_emnist.device import cards
from edge_emnist.device.cards import REFUSED, card_path, read_card, read_refusals
from edge_emnist.device.files import file_sizes, sha256_file
from edge_emnist.device.formats import FORMATS, QUANTIZATIONS, RUNTIME_OF_SUFFIX
from edge_emnist.device.host import host_description
from edge_emnist.device.runtimes import LiteRTModel, OrtModel, accuracy, open_artifact
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.export.config import ExportOptions
from edge_emnist.export.metadata import LUMA, embed_onnx, facts
from edge_emnist.export.tflite_metadata import ClassifierFacts
from edge_emnist.export.tflite_metadata import embed as embed_tflite
from edge_emnist.io import append_jsonl, atomic_path, check_writable, folder_lock
from edge_emnist.models import create_model, shape_tag
from edge_emnist.models.cost import macs, trainable_params
from edge_emnist.optimize.prune import sparsity_report
from edge_emnist.optimize.rebuild import build_model
from edge_emnist.optimize.structured import narrow
from edge_emnist.runs import Run, calibration_sample, distill_tag, open_run, training_split


def artifact_name(run: Run, options: ExportOptions, fmt: str) -> str:
    parts = [run.config.arch + shape_tag(run.config.arch, run.config.model_options), run.config.dataset]
    if run.config.distill:
        parts.append(distill_tag(run.config))
    if run.tag:
        parts.append(run.tag)
    parts.append(QUANTIZATIONS[options.quantize].variant)
    if options.quantize == "int8" and options.io_type != "int8" and options.io_type in FORMATS[fmt].io_types:
        parts.append(f"{options.io_type}io")
    if options.input != "grey":
        parts.append(options.input)
    return "-".join(parts) + FORMATS[fmt].suffix


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Agreement of the top-1 class, strict argmax; disagreements that are ties in the artifact are counted
    apart: an int8 output has 256 levels, so two close classes can come out equal (argmax then takes the first).
    """
    difference = np.abs(reference - candidate)
    expected = reference.argmax(1)
    # a NaN row's argmax is 0 on both sides: non-finite outputs are disagreements, never agreement
    disagree = (expected != candidate.argmax(1)) | ~np.isfinite(candidate).all(1) | ~np.isfinite(reference).all(1)
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
    module, _, name = FORMATS[fmt].converter.partition(":")
    convert = getattr(importlib.import_module(module), name)
    try:
        convert(model, path, quantize=options.quantize, representative=representative, io_type=options.io_type,
                qat=run.qat)
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


class ParityError(EdgeEmnistError):
    """An artifact's answers differ too often from the Keras model's: it is refused, with its numbers."""

    def __init__(self, artifact: str, check: dict) -> None:
        self.artifact, self.check = artifact, check
        super().__init__(
            f"{artifact} failed parity: top-1 agreement {check['top1_agreement']:.4%} with the Keras model, below "
            f"the {check['required_top1_agreement']:.1%} bar ({check['disagreements_tied']} of "
            f"{check['disagreements']} disagreements are ties in its output, max output difference "
            f"{check['max_abs_diff']:.3g}); nothing was written. Quantization-aware training "
            "(`edge-emnist qat RUN`) usually closes the gap")

    def record(self) -> dict:
        return {"artifact": self.artifact, "reason": "parity", "parity": self.check, "refused_at": _now()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def artifact_is_current(artifact: Path, card: dict | None = None) -> bool:
    """True when the card beside `artifact` describes this very file (its sha256 matches)."""
    card = card if card is not None else read_card(artifact)
    return bool(card) and artifact.is_file() and card.get("sha256") == sha256_file(artifact)


def _guard_overwrite(path: Path, weights_sha256: str, options: ExportOptions) -> None:
    """An existing artifact of the same name from other weights is replaced only with --force."""
    if options.force or not path.exists():
        return
    card = read_card(path)
    source = (card or {}).get("source", {}).get("weights_sha256")
    if source != weights_sha256:
        raise EdgeEmnistError(f"{path} exists and was made from other weights; pass --force to replace it, or "
                              "choose another --out-dir")


def _forget_refusal(out_dir: Path, name: str) -> None:
    path = out_dir / REFUSED
    if not any(r.get("artifact") == name for r in read_refusals(out_dir)):
        return
    kept = [r for r in read_refusals(out_dir) if r.get("artifact") != name]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def export_run(run_dir: str | Path, options: ExportOptions, *, data_dir=None, cache_dir=None,
               log=print, refused: list[dict] | None = None) -> list[Path]:
    """Export one run in every requested format; returns the artifact paths (each has a .json card beside it).

    An artifact that misses its parity bar raises ParityError, or, when `refused` is a list, is appended to
    it (and to the folder's refused.jsonl) while the other formats go on.
    """
    run = open_run(run_dir)
    options.validate(run)
    check_writable(options.out_dir)
    with folder_lock(options.out_dir, keep_file=False):  # two exports into one folder: the second says who holds it
        return _export_run(run, options, data_dir, cache_dir, log, refused)


def _export_run(run: Run, options: ExportOptions, data_dir, cache_dir, log, refused: list[dict] | None) -> list[Path]:
    weights_sha256 = sha256_file(run.weights)
    for fmt in options.formats:
        _guard_overwrite(options.out_dir / artifact_name(run, options, fmt), weights_sha256, options)
    data = load_dataset(run.config.dataset, data_dir, cache_dir)
    model = build_model(run, data.spec.num_classes)
    x_train, _, _, _ = training_split(run.config, data)
    representative = calibration_sample(run.config, x_train, options.calibration_size)
    test_images = data.test.images[..., None].astype(np.float32) / 255.0
    test_labels = data.test.labels
    log(f"{run.path}: Keras reference on {len(test_labels):,} test images")
    reference = model.predict(test_images, batch_size=options.eval_batch, verbose=0)  # the grey model's answers
    if options.input == "rgb":  # parity below holds the RGB file against the grey model
        model, representative = rgb_input(model), np.repeat(representative, 3, axis=-1)
    if not np.isfinite(reference).all():
        raise EdgeEmnistError(f"{run.path}: the model's outputs are not finite (NaN or infinite weights: the run "
                              "diverged); nothing was exported")
    keras_accuracy = accuracy(reference, test_labels)
    sparsity = sparsity_report(model)
    plain = create_model(run.config.arch, data.spec.num_classes, **run.config.model_options)  # no QAT wrappers
    if run.filter_plan:  # structured pruning: the card's cost is the narrowed model's
        plain = narrow(plain, run.filter_plan)
    profile = {"trainable_params": trainable_params(plain), "macs": macs(plain)}
    host = host_description()
    channels = 3 if options.input == "rgb" else 1

    written = []
    for fmt in options.formats:
        path = options.out_dir / artifact_name(run, options, fmt)
        started = time.perf_counter()
        try:
            with atomic_path(path) as tmp:
                _convert(model, run, fmt, options, tmp, representative)
                # what the file says about itself, before it is checked and hashed: one set of facts, both formats
                said = facts(name=path.stem, arch=run.config.arch, dataset=run.config.dataset,
                             labels=data.spec.card_labels(),
                             class_groups=cards.class_groups_section(data.spec.card_labels()),
                             source_run=str(run.path), weights_sha256=weights_sha256,
                             data_fingerprint=data.provenance.fingerprint, transposed=data.spec.transposed,
                             channels=channels)
                if fmt == "tflite":
                    embed_tflite(tmp, _classifier_facts(said, channels))
                else:
                    embed_onnx(tmp, said)
                runtime = open_artifact(tmp)
                probabilities = runtime.predict(test_images, batch_size=options.eval_batch)
                check = parity(reference, probabilities)
                artifact_accuracy = accuracy(probabilities, test_labels)
                check["required_top1_agreement"] = QUANTIZATIONS[options.quantize].parity_bar
                check["checked_on"] = [_checked_on(host, RUNTIME_OF_SUFFIX[path.suffix], check, artifact_accuracy)]
                for target in options.check_on:
                    log(f"{path.name}: checking the answers under {target} ({options.check_images:,} images)")
                    check["checked_on"].append(_emulated_check(tmp, target, data.test, reference, options))
                if check["top1_agreement"] < check["required_top1_agreement"]:
                    raise ParityError(path.name, check)
                input_spec, output_spec = _io_specs(runtime)
                card = {
                    "artifact": path.name,
                    "sha256": sha256_file(tmp),
                    "format": fmt,
                    "quantize": options.quantize,
                    "variant": QUANTIZATIONS[options.quantize].variant,
                    "arch": run.config.arch,
                    "dataset": run.config.dataset,
                    "model": profile,
                    "labels": data.spec.card_labels(),
                    "class_groups": cards.class_groups_section(data.spec.card_labels()),
                    "input": cards.input_section(input_spec, data.spec.transposed),
                    "output": {**output_spec, "meaning": "softmax probabilities over the labels, in label order"},
                    "source": {
                        "run": str(run.path),
                        "weights": str(run.weights),
                        "weights_sha256": weights_sha256,
                        "optimization": {k: v for k, v in run.optimization.items() if k != "history"} or None,
                        "data_fingerprint": data.provenance.fingerprint,
                        "data_official": data.provenance.official,
                        "augment": run.config.augment or None,
                    },
                    "sparsity": {"total": sparsity["total"], "zeros": sparsity["zeros"],
                                 "kernel_weights": sparsity["kernel_weights"]},
                    "size": file_sizes(tmp),
                    "parity": check,
                    "accuracy": {"split": "test", "images": int(len(test_labels)),
                                 "artifact": artifact_accuracy, "keras": keras_accuracy},
                    "answers": cards.answers_section(probabilities),
                    "export_seconds": round(time.perf_counter() - started, 2),
                    "exported_at": _now(),
                    "tools": cards.tool_versions(),
                }
        except ParityError as error:
            if refused is None:
                raise
            refused.append(error.record())
            append_jsonl(options.out_dir / REFUSED, [error.record()])
            log(f"refused: {error}")
            continue
        # the artifact is in place; its card, published now, is the proof that it is complete. Where the card
        # cannot be written (a full disk), the artifact goes too: no file without its card, no --force needed later
        wrong = cards.card_problem(card)
        if wrong:  # a bug here, not the user's input: no artifact is published with a card readers would refuse
            path.unlink(missing_ok=True)
            raise ValueError(f"refusing to write {card_path(path).name}: {wrong}")
        try:
            with atomic_path(card_path(path)) as card_tmp:
                card_tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        _forget_refusal(options.out_dir, path.name)
        acc = card["accuracy"]
        log(f"wrote {path} ({card['size']['bytes'] / 1024:.0f} KiB, gzip {card['size']['gzip_bytes'] / 1024:.0f} KiB): "
            f"test accuracy {acc['artifact']:.4f} vs Keras {acc['keras']:.4f}, "
            f"top-1 agreement {check['top1_agreement']:.4%}")
        written.append(path)
    return written


def rgb_input(model):
    """The model behind a fixed 1x1 convolution from RGB to grey (ITU-R 601 luma): one op in TFLite and ONNX,
    quantized with the rest in int8; trained weights untouched."""
    from edge_emnist.tf_keras_env import keras

    size = model.input_shape[1:3]
    image = keras.Input(shape=(*size, 3), name="image")
    luma = keras.initializers.Constant(np.array(LUMA, np.float32).reshape(1, 1, 3, 1))
    grey = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=luma, trainable=False,
                               name="rgb_to_grey")(image)
    return keras.Model(image, model(grey), name=f"{model.name}_rgb")


def _classifier_facts(said: dict[str, str], channels: int) -> ClassifierFacts:
    """The TFLite metadata's fields, taken from the facts the ONNX file carries too."""
    normalization = json.loads(said["normalization"])
    return ClassifierFacts(name=said["name"], description=said["description"], version=said["version"],
                           author="edge-emnist", labels=json.loads(said["labels"]), channels=channels, size=28,
                           mean=normalization["mean"], std=normalization["std"], value_range=(0, 255))


def _emulated_check(artifact: Path, target: str, test, reference: np.ndarray, options: ExportOptions) -> dict:
    """The artifact's answers on the first images of the test split, computed under an emulated CPU."""
    from edge_emnist.targets.qemu import emulated_predictions

    n = min(options.check_images, len(test.labels))
    probabilities, host = emulated_predictions(artifact, test.images[:n], test.labels[:n], target)
    subset = parity(reference[:n], probabilities)
    line = _checked_on(host, RUNTIME_OF_SUFFIX[artifact.suffix], subset, accuracy(probabilities, test.labels[:n]))
    return {**line, "target": target}


def _checked_on(host: dict, runtime: str, check: dict, artifact_accuracy: float) -> dict:
    """One line of the card's per-ISA parity: where the check ran and what it found."""
    return {"target": "native", "cpu": host["cpu"], "machine": host["machine"], "isa": host["isa"],
            "runtime": runtime, "top1_agreement": check["top1_agreement"], "accuracy": artifact_accuracy,
            "samples": check["samples"], "onnxruntime": host["versions"].get("onnxruntime"),
            "ai-edge-litert": host["versions"].get("ai-edge-litert")}
