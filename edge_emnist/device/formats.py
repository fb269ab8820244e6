"""The one table of artifact formats, quantizations and the runtimes that run them.

Export's variants, the runner's dispatch, bench's validation and the CLI's choices are all derived from it:
adding a runtime is a row here plus its adapter in runtimes.py. Plain Python, no imports, so the device-side
runner ships it as is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str


@dataclass(frozen=True)
class Runtime:
    name: str
    format: str  # the Format.name it runs
    kind: str  # "cpu" or "gpu": where it computes
    package: str  # what provides it (pip)
    default: bool = False  # the runtime an artifact of its format gets unless another is asked for
    options: tuple[str, ...] = ()  # adapter options beyond `threads` that it takes and its records' settings keep


FORMATS = {f.name: f for f in (Format("tflite", ".tflite"), Format("onnx", ".onnx"))}

# --quantize value -> the variant word in artifact names
QUANTIZATIONS = {"none": "fp32", "fp16": "fp16", "dynamic": "dynamic", "int8": "int8"}

RUNTIMES = {r.name: r for r in (
    Runtime("litert", "tflite", "cpu", "ai-edge-litert", default=True, options=("xnnpack",)),
    Runtime("ort", "onnx", "cpu", "onnxruntime", default=True),
    Runtime("litert-gpu", "tflite", "gpu", "ai-edge-litert"),
    Runtime("ort-cuda", "onnx", "gpu", "onnxruntime-gpu"),
    Runtime("ort-tensorrt", "onnx", "gpu", "onnxruntime-gpu"),
)}

CPU_RUNTIMES = tuple(name for name, r in RUNTIMES.items() if r.kind == "cpu")
GPU_RUNTIMES = tuple(name for name, r in RUNTIMES.items() if r.kind == "gpu")
FORMAT_OF_SUFFIX = {f.suffix: f.name for f in FORMATS.values()}
RUNTIME_OF_SUFFIX = {FORMATS[r.format].suffix: name for name, r in RUNTIMES.items() if r.default}


def on_gpu(runtime: str | None) -> bool:
    """Whether a record of this runtime was computed on a GPU (and belongs under the GPU's target name)."""
    return runtime in RUNTIMES and RUNTIMES[runtime].kind == "gpu"


def settings(runtime: str, threads: int, **options) -> dict:
    """What a record says it was measured with: the thread count and the options this runtime takes."""
    return {"threads": threads, **{name: options[name] for name in RUNTIMES[runtime].options if name in options}}


def runtimes_for(suffix: str, wanted: tuple[str, ...]) -> list[str]:
    """The wanted runtimes that run an artifact with this suffix, in the table's order."""
    fmt = FORMAT_OF_SUFFIX.get(suffix)
    return [name for name, r in RUNTIMES.items() if r.format == fmt and name in wanted]
