"""The one table of artifact formats, quantizations and the runtimes that run them.

Export's variants, converters and parity bars, the runner's dispatch, the profilers, the GPU checks, bench's
validation and yardstick, the report's columns and the CLI's choices are all derived from it: adding a runtime
is a row here plus its adapter in runtimes.py. Code is named by dotted strings, resolved where it lives
(`resolve`), so the table stays import-free and the device-side runner ships it as is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    converter: str  # "module:function" that writes the artifact from a tf_keras model (export resolves it)
    io_types: tuple[str, ...] = ()  # edge types an int8 artifact may take besides int8 (export's --io)
    aliases: tuple[str, ...] = ()  # other names users know it by (--format litert: TFLite's current name)


@dataclass(frozen=True)
class Quantization:
    name: str  # the --quantize value
    variant: str  # the word in artifact names
    parity_bar: float  # least top-1 agreement with the Keras model on the test split for the artifact to ship


@dataclass(frozen=True)
class Runtime:
    name: str
    format: str  # the Format.name it runs
    kind: str  # "cpu" or "gpu": where it computes
    package: str  # what provides it (pip)
    label: str  # its name in report columns
    adapter: str  # "runtimes.NAME": what opens an artifact in it (NAME(path, runtime_row, **options))
    profiler: str | None = None  # "profiles.NAME": how its operators are timed; None: says it has none
    availability: str | None = None  # "runtimes.NAME": why it cannot run here (None: it can); None: always can
    default: bool = False  # the runtime an artifact of its format gets unless another is asked for
    options: tuple[str, ...] = ()  # adapter options beyond `threads` that it takes and its records' settings keep
    providers: tuple[str, ...] = ()  # ONNX Runtime execution providers, first choice first
    yardstick: str | None = None  # an independent timer of the same file, run beside it (litert-benchmark)
    # (field, value) of an operator in a profile that ran outside the accelerated path; for LiteRT only while
    # its accelerated option (xnnpack) is on
    fallback: tuple[str, str] | None = None


FORMATS = {f.name: f for f in (
    Format("tflite", ".tflite", "edge_emnist.export.tflite:convert", io_types=("int8", "uint8", "float"),
           aliases=("litert",)),
    Format("onnx", ".onnx", "edge_emnist.export.onnx:convert"),
)}

QUANTIZATIONS = {q.name: q for q in (
    Quantization("none", "fp32", 0.999),
    Quantization("fp16", "fp16", 0.999),
    Quantization("dynamic", "dynamic", 0.99),
    Quantization("int8", "int8", 0.99),
)}

_CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")
RUNTIMES = {r.name: r for r in (
    Runtime("litert", "tflite", "cpu", "ai-edge-litert", "LiteRT", "runtimes.open_litert", "profiles.litert_operators",
            default=True, options=("xnnpack",), yardstick="litert-benchmark", fallback=("kernel", "builtin")),
    Runtime("ort", "onnx", "cpu", "onnxruntime", "ORT", "runtimes.open_ort", "profiles.ort_operators", default=True,
            providers=("CPUExecutionProvider",)),
    Runtime("litert-gpu", "tflite", "gpu", "ai-edge-litert", "LiteRT GPU", "runtimes.open_litert_gpu",
            availability="runtimes.litert_gpu_reason"),
    Runtime("ort-cuda", "onnx", "gpu", "onnxruntime-gpu", "ORT CUDA", "runtimes.open_ort", "profiles.ort_operators",
            availability="runtimes.ort_provider_reason", providers=_CUDA,
            fallback=("provider", "CPUExecutionProvider")),
    Runtime("ort-tensorrt", "onnx", "gpu", "onnxruntime-gpu", "ORT TensorRT", "runtimes.open_ort",
            "profiles.ort_operators", availability="runtimes.ort_provider_reason",
            providers=("TensorrtExecutionProvider", *_CUDA), fallback=("provider", "CPUExecutionProvider")),
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


FORMAT_ALIASES = {alias: f.name for f in FORMATS.values() for alias in f.aliases}


def format_named(word: str) -> str:
    """A format's name from the word a user gave ("litert" -> "tflite"); unknown words come back unchanged."""
    return FORMAT_ALIASES.get(word, word)


def resolve(dotted: str, namespace: dict, module: str) -> object:
    """The object a row names ("runtimes.open_litert"), looked up in that module's own namespace (`globals()`),
    which works both in the package and where the runner's files lie flat on a device."""
    owner, _, name = dotted.partition(".")
    if owner != module or name not in namespace:
        raise LookupError(f"the runtime table names {dotted!r}, which {module}.py does not define")
    return namespace[name]
