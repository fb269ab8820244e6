"""Run an exported artifact through its own runtime, with nothing from TensorFlow.

Every runtime takes float32 images in [0, 1], shape (N, 28, 28, 1), and returns float32 class
probabilities: quantized inputs and outputs are converted with the scale and zero point stored in the
model, exactly as an app would; a model that takes RGB (export --input rgb) gets the grey image in all three
channels, as a grey camera frame would be. This file needs only numpy plus ai-edge-litert or onnxruntime, so the
device runner can ship it as is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:
    from edge_emnist.device.formats import FORMAT_OF_SUFFIX, RUNTIME_OF_SUFFIX, RUNTIMES, resolve
except ImportError:  # copied to a device beside formats.py
    from formats import FORMAT_OF_SUFFIX, RUNTIME_OF_SUFFIX, RUNTIMES, resolve  # type: ignore[no-redef]


VERBOSE_ENV = "EDGE_EMNIST_VERBOSE"


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Silence what C++ libraries write straight to file descriptor 2 (TensorFlow's CUDA probing, LiteRT's
    "Created TensorFlow Lite XNNPACK delegate", the converter's settings), unless EDGE_EMNIST_VERBOSE=1.
    Python's own errors are printed after the block, when the descriptor is back."""
    if os.environ.get(VERBOSE_ENV) == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (embedded, some notebooks): nothing to mute
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * np.float32(scale)


def litert_interpreter(*, threads: int = 1, xnnpack: bool = True, **source):
    """LiteRT's interpreter on XNNPACK (as on a phone) or on its builtin kernels only, its start-up lines muted;
    `source`: model_path= or model_content=, plus any other Interpreter option."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with native_stderr_muted():
        return Interpreter(num_threads=threads, experimental_op_resolver_type=resolver, **source)


@dataclass
class LiteRTModel:
    """A .tflite model in ai_edge_litert's interpreter; XNNPACK on by default, as on a phone."""

    path: Path
    threads: int = 1
    xnnpack: bool = True
    _interpreter: object = field(init=False, repr=False)
    _batch: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self._interpreter = litert_interpreter(threads=self.threads, xnnpack=self.xnnpack, model_path=str(self.path))
        self.input = self._interpreter.get_input_details()[0]
        self.output = self._interpreter.get_output_details()[0]

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self.input["shape"])
            shape[0] = batch
            self._interpreter.resize_tensor_input(self.input["index"], shape)
            with native_stderr_muted():  # XNNPACK announces itself when the tensors are (re)allocated
                self._interpreter.allocate_tensors()
            self._batch = batch

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """One invocation on an already-typed input batch (what latency measures)."""
        self._resize(len(x))
        self._interpreter.set_tensor(self.input["index"], x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self.output["index"])

    def to_input(self, images: np.ndarray) -> np.ndarray:
        images = fit_channels(images, int(self.input["shape"][-1]))
        dtype = np.dtype(self.input["dtype"])
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self.input["quantization"]
        return quantize(images, scale, zero_point, dtype)

    def from_output(self, y: np.ndarray) -> np.ndarray:
        if np.dtype(self.output["dtype"]) == np.float32:
            return y
        return dequantize(y, *self.output["quantization"])

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return _batched(lambda x: self.from_output(self.run_raw(self.to_input(x))), images, batch_size)


@dataclass
class OrtModel:
    """An .onnx model in an ONNX Runtime CPU session."""

    path: Path
    threads: int = 1
    optimization: str = "all"  # disable | basic | extended | all
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    profile_prefix: str | None = None  # ONNX Runtime's profiler writes <prefix>_<time>.json (device.profiles)

    def __post_init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        if self.profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = self.profile_prefix
        self.session = ort.InferenceSession(str(self.path), options, providers=list(self.providers))
        self.input_name = self.session.get_inputs()[0].name

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def to_input(self, images: np.ndarray) -> np.ndarray:
        channels = self.session.get_inputs()[0].shape[-1]
        return fit_channels(images, channels if isinstance(channels, int) else 1).astype(np.float32)

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return _batched(lambda x: self.run_raw(self.to_input(x)), images, batch_size)


@dataclass
class LiteRTCompiled:
    """A .tflite through LiteRT's CompiledModel API on a hardware accelerator: "gpu" is LiteRT's GPU accelerator
    (WebGPU on Vulkan on Linux, Metal on macOS, OpenCL/GL on Android) with the CPU taking what it cannot run;
    "cpu" is the same API on the CPU (what the tests run where no GPU is)."""

    path: Path
    threads: int = 1  # the accelerator decides; kept so every adapter takes the same options
    accelerator: str = "gpu"
    _batch: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
        from ai_edge_litert.interpreter import Interpreter

        flags = {"gpu": HardwareAccelerator.GPU | HardwareAccelerator.CPU, "cpu": HardwareAccelerator.CPU}
        with native_stderr_muted():
            self._model = CompiledModel.from_file(str(self.path), hardware_accel=flags[self.accelerator])
            details = Interpreter(model_path=str(self.path))  # quantization parameters of the model's edges
        self.input, self.output = details.get_input_details()[0], details.get_output_details()[0]
        self.classes = int(self.output["shape"][-1])
        self.fully_accelerated = bool(self._model.is_fully_accelerated())

    def device_info(self) -> dict:
        return {"accelerator": self.accelerator, "fully_accelerated": self.fully_accelerated}

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            with native_stderr_muted():
                self._model.resize_input_tensor(0, list(x.shape))
                self._inputs, self._outputs = self._model.create_input_buffers(0), self._model.create_output_buffers(0)
            self._batch = len(x)
        self._inputs[0].write(np.ascontiguousarray(x))
        self._model.run_by_index(0, self._inputs, self._outputs)
        dtype = np.dtype(self.output["dtype"])
        return self._outputs[0].read(len(x) * self.classes, dtype).reshape(len(x), self.classes)

    to_input = LiteRTModel.to_input
    from_output = LiteRTModel.from_output
    predict = LiteRTModel.predict


def fit_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Grey images (N, H, W, 1) for a model that takes `channels`: repeated into RGB where it takes three."""
    if channels == images.shape[-1] or images.shape[-1] != 1:
        return images
    return np.repeat(images, channels, axis=-1)


def open_litert(path: Path, row, **options) -> LiteRTModel:
    return LiteRTModel(path, **options)


def open_litert_gpu(path: Path, row, **options) -> LiteRTCompiled:
    return LiteRTCompiled(path, accelerator="gpu", **options)


def open_ort(path: Path, row, **options) -> OrtModel:
    """ONNX Runtime on the row's execution providers; it falls back to the CPU silently, so a GPU row that did not
    get its first provider is an error here, not a CPU measurement under a GPU name."""
    import warnings

    with warnings.catch_warnings():  # "not in available provider names": said once, as the error below
        warnings.simplefilter("ignore", UserWarning)
        model = OrtModel(path, providers=row.providers, **options)
    if row.providers[0] not in model.session.get_providers():
        raise RuntimeError(f"onnxruntime did not start {row.providers[0]} (it runs on {model.session.get_providers()})")
    return model


def ort_provider_reason(row) -> str | None:
    """Why this onnxruntime cannot run the row's first execution provider, or None."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if row.providers[0] not in ort.get_available_providers():
        return (f"this onnxruntime has no {row.providers[0]} (pip install onnxruntime-gpu on a machine with an NVIDIA "
                "GPU and CUDA 13)")
    return None


# A 960-byte .tflite, relu(2x + 1) on a (1, 4) float32 input: what the GPU probe asks the accelerator to run.
_PROBE_MODEL = (
    "eNpdUz1Lw1AUvWmjDRhqqZ9Ihw7OVevXImrxAwr9AC2OViEZAjYFjaKT/ggHB0cRhw4O/gBnR3FwqP9A/Qcaz325CTGPHvJy3rnn"
    "3ndvWiCi1nZtfpSKVKBJGqUcmeAM0rEncAE81mlEFnCQJsJPrRSwAOhA3/f9jOxHgI1mY29rZ7fabLTrW63KZqVVga+pvA2cD8a0"
    "HcdtH5+6ntOx22f28YnTdZWmD7wBz8AdcAtcSz0cu4+c/DwAclKTQdkoB3PTih1UXJiTlxndV1d3XrYvHyeWPr7Sci9daiyXynOl"
    "WaIXycWec6VFpqL18OP7PeBbNJJjPZk34K/W3qHtA8N4q9eqO8WNrot7e7ZVIrRY9Z5wj7BC9sgKz/PoAY/Ak3h2Dh03nIcVi5+S"
    "+CGJLwR1DfGzCGhRbzKqRqY08WSvdKTJKs+4l/R7zJR979f3NYlJxb6P0E8TbgD4lHl6QZPU+Sp6x7Kc+LFuks/A8yyrlo0PxLtI"
    "+p4l4sIZrYDnWjqnR//09wl9Wvp1BH4g0M9cSK2vCW1KtDeiPbSsSEs0ruZFMrFgZcAGfQ09NHny/4X354n7pGROhnrXFWeqvpNi"
    "uN/5wDP/B7wweU0="
)
_PROBE = """
import base64, sys, tempfile, zlib, numpy as np
from ai_edge_litert.compiled_model import CompiledModel, HardwareAccelerator
with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
    f.write(zlib.decompress(base64.b64decode(sys.argv[1]))); f.flush()
    model = CompiledModel.from_file(f.name, hardware_accel=HardwareAccelerator.GPU)
    if not model.is_fully_accelerated():
        print("no GPU took the model: the accelerator found no usable adapter"); sys.exit(0)
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(np.arange(4, dtype=np.float32).reshape(1, 4) - 1)
    model.run_by_index(0, inputs, outputs)
    got = outputs[0].read(4, np.float32)
    print("ok" if np.allclose(got, [0, 1, 3, 5]) else f"the GPU computed {got}, not [0 1 3 5]")
"""


@functools.cache  # once per process: the child takes a second or two
def litert_gpu_probe() -> str | None:
    """None when LiteRT's GPU accelerator really runs a model here; else why not. Asked of a child process: with a
    Vulkan loader but no usable adapter (or a software driver) the accelerator can fail to start, or abort the
    process that loaded it at exit, and neither may happen to the process that only wanted to know."""
    import subprocess

    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, "".join(_PROBE_MODEL)], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        return "LiteRT's GPU accelerator did not start within 120 s"
    answer = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode == 0 and answer == "ok":
        return None
    if done.returncode == 0 and answer:
        return f"LiteRT's GPU accelerator: {answer}"
    said = [line.strip() for line in done.stderr.splitlines() if line.strip() and not line.startswith("INFO")]
    errors = [line.split("] ", 1)[-1] for line in said if line.startswith("ERROR: [") and "] " in line]
    why = (errors or said or [""])[0][:200]
    return f"LiteRT's GPU accelerator failed to start here (exit {done.returncode}{': ' + why if why else ''})"


def litert_gpu_reason(row) -> str | None:
    """Why LiteRT's GPU accelerator cannot run here: no library in the wheel, no Vulkan loader, or (asked of a child
    process) no GPU that really runs a model."""
    import ctypes.util
    import importlib.util
    import platform as _platform

    spec = importlib.util.find_spec("ai_edge_litert")
    if spec is None:
        return "ai-edge-litert is not installed"
    folder = Path(spec.origin).parent
    if not any(folder.glob("libLiteRt*Gpu*Accelerator*")) and not any(folder.glob("libLiteRtWebGpu*")):
        return "this ai-edge-litert wheel has no GPU accelerator library"
    if _platform.system() == "Linux" and not ctypes.util.find_library("vulkan"):
        return ("no Vulkan loader (libvulkan.so.1): LiteRT's GPU accelerator runs WebGPU on Vulkan on Linux "
                "(apt install libvulkan1 and a GPU driver with a Vulkan ICD)")
    return litert_gpu_probe()  # a loader is not a GPU: ask the accelerator itself, in a child process


def unavailable_reason(runtime: str) -> str | None:
    """None if this machine can try the runtime; else why not, in one line (a skipped record, never a crash)."""
    row = RUNTIMES[runtime]
    return resolve(row.availability, globals(), "runtimes")(row) if row.availability else None


def open_artifact(path: str | Path, runtime: str | None = None, **options):
    """The artifact in `runtime` (default: the one its suffix calls for, formats.RUNTIME_OF_SUFFIX)."""
    path = Path(path)
    if runtime is None:
        try:
            runtime = RUNTIME_OF_SUFFIX[path.suffix]
        except KeyError:
            raise ValueError(f"{path}: unknown artifact type (expected {' or '.join(RUNTIME_OF_SUFFIX)})") from None
    if RUNTIMES[runtime].format != FORMAT_OF_SUFFIX.get(path.suffix):
        raise ValueError(f"{path.name}: {runtime} runs {RUNTIMES[runtime].format} artifacts")
    row = RUNTIMES[runtime]
    taken = {"threads", *row.options}  # options of other runtimes (xnnpack for ORT) do not apply
    adapter = resolve(row.adapter, globals(), "runtimes")
    return adapter(path, row, **{name: value for name, value in options.items() if name in taken})


def model_io(path: str | Path) -> dict:
    """What the file itself says it takes and gives (read without running it): the input's dtype, scale and
    zero point (None for float) and the number of output classes, to hold a model card against."""
    path = Path(path)
    if FORMAT_OF_SUFFIX.get(path.suffix) == "tflite":
        interpreter = litert_interpreter(model_path=str(path), xnnpack=False)
        i, o = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        scale, zero_point = i["quantization"]
        return {"input_dtype": np.dtype(i["dtype"]).name, "input_scale": float(scale) if scale else None,
                "input_zero_point": int(zero_point) if scale else None, "classes": int(o["shape_signature"][-1])}
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    i, o = session.get_inputs()[0], session.get_outputs()[0]
    dtype = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
             "tensor(int8)": "int8"}.get(i.type, i.type)
    classes = o.shape[-1] if o.shape and isinstance(o.shape[-1], int) else None
    return {"input_dtype": dtype, "input_scale": None, "input_zero_point": None, "classes": classes}


def _batched(fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([fn(images[i: i + batch_size]) for i in range(0, len(images), batch_size)])


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))
