"""Keras 3 for training: which backend (JAX, PyTorch, TensorFlow), which devices, which precision, how many replicas.

Keras 3 fixes its backend when it is first imported, so `load_keras` sets KERAS_BACKEND before that and
refuses a different backend once one is loaded (a new process can pick another). Nothing here imports
TensorFlow unless the TensorFlow backend is the one chosen: a JAX or PyTorch machine needs none.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from edge_emnist.environ import LOGICAL_CPUS_ENV
from edge_emnist.errors import EdgeEmnistError


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # what must be importable
    install: str  # what to tell a user who lacks it
    data_parallel: str | None  # how several devices train one model; None: not supported here


# The order is the preference on a machine with an NVIDIA GPU when neither --backend nor KERAS_BACKEND says: the
# first one installed. On a CPU TensorFlow comes first: measured on a 2-core AVX2 EPYC (benchmarks/train_step.md),
# its step (without XLA) is the shortest for every architecture (1.9-11x shorter than JAX's or PyTorch's).
BACKENDS = {b.name: b for b in (
    Backend("jax", "jax", "pip install 'edge-emnist[jax]' (on an NVIDIA GPU: 'edge-emnist[jax-cuda]')",
            "keras.distribution.DataParallel"),
    Backend("torch", "torch", "pip install 'edge-emnist[torch]' (PyTorch's own index for CUDA builds)", None),
    Backend("tensorflow", "tensorflow", "pip install tensorflow (already a dependency of edge-emnist)",
            "tf.distribute.MirroredStrategy"),
)}


# Each takes the Keras module first: the model is built by whichever Keras `load_keras` gave. TrainConfig's
# choices are these tables' keys.
OPTIMIZERS = {
    "adam": lambda keras, lr, momentum: keras.optimizers.Adam(lr),
    "nadam": lambda keras, lr, momentum: keras.optimizers.Nadam(lr),
    "sgd": lambda keras, lr, momentum: keras.optimizers.SGD(lr, momentum=momentum),
}


def cosine_lr(epoch: int, lr: float, epochs: int) -> float:
    """Cosine decay from `lr` at epoch 0 towards 0 at `epochs` (per epoch): no plateau to detect, so it works the
    same whatever the validation loss measures (a distillation loss never plateaus on the labels' scale)."""
    return lr * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))


# The LR schedule as a Keras callback (either Keras: both have these), from the run's lr and epochs; None: constant.
# plateau: halve the LR after a validation-loss plateau of 2 epochs (down to 1e-5). cosine: cosine_lr over the run.
LR_SCHEDULES = {
    "constant": None,
    "plateau": lambda keras, lr, epochs: keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                                           patience=2, min_lr=1e-5),
    "cosine": lambda keras, lr, epochs: keras.callbacks.LearningRateScheduler(
        lambda epoch, _current: cosine_lr(epoch, lr, epochs)),
}
INITIALIZERS = {
    "glorot": None,  # Keras' default (glorot_uniform): leave the builders' weights as they are
    "random": lambda keras, seed: keras.initializers.RandomNormal(stddev=0.05, seed=seed),
    "he": lambda keras, seed: keras.initializers.HeNormal(seed=seed),
    "lecun": lambda keras, seed: keras.initializers.LecunNormal(seed=seed),
}
MIXED_PRECISION = ("auto", "on", "off", "bfloat16", "float16")
DISTRIBUTE = ("auto", "none", "mirrored")  # auto: data parallel over 2+ GPUs; mirrored: over every device


def installed_backends() -> list[str]:
    return [b.name for b in BACKENDS.values() if importlib.util.find_spec(b.module) is not None]


def default_backend() -> str:
    """The first installed backend on a GPU machine; TensorFlow (the fastest on a CPU) on one without."""
    from edge_emnist.device.host import gpu_names  # nvidia-smi: no backend import needed to ask

    installed = installed_backends()
    if not gpu_names() and "tensorflow" in installed:
        return "tensorflow"
    return next(iter(installed), "tensorflow")


def loaded_backend() -> str | None:
    """The backend of the Keras 3 already imported in this process (TensorFlow's tools import it too), or None."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


def choose_backend(requested: str | None = None) -> str:
    """--backend, else the backend Keras already runs on here, else KERAS_BACKEND, else `default_backend()`."""
    loaded = loaded_backend()
    name = requested or loaded or os.environ.get("KERAS_BACKEND") or default_backend()
    if name not in BACKENDS:
        raise EdgeEmnistError(f"unknown Keras backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if loaded and name != loaded:
        raise EdgeEmnistError(f"Keras is already running on {loaded} in this process; train with --backend {name} "
                              "in a new process (the backend is fixed when Keras is first imported)")
    if importlib.util.find_spec(BACKENDS[name].module) is None:
        raise EdgeEmnistError(f"the {name} backend is not installed: {BACKENDS[name].install}")
    return name


def load_keras(requested: str | None = None) -> ModuleType:
    """Keras 3 on the chosen backend."""
    name = choose_backend(requested)
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
        logical_cpus = int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0)
        if name == "jax" and logical_cpus > 1:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                       f" --xla_force_host_platform_device_count={logical_cpus}").strip()
        if name == "tensorflow":
            import edge_emnist.tf_keras_env  # noqa: F401  (TensorFlow's environment: oneDNN, logs, logical CPUs)
    import keras

    if not hasattr(keras, "distribution"):
        raise EdgeEmnistError(f"the installed keras {keras.__version__} is not Keras 3: pip install 'keras>=3.6'")
    return keras


def _jax_accelerators() -> list[str]:
    import jax

    return [d.device_kind for d in jax.devices() if d.platform != "cpu"]


def _torch_accelerators() -> list[str]:
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _tensorflow_accelerators() -> list[str]:
    from edge_emnist.tf_keras_env import tf

    return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]


ACCELERATORS: dict[str, Callable[[], list[str]]] = {
    "jax": _jax_accelerators, "torch": _torch_accelerators, "tensorflow": _tensorflow_accelerators}


@functools.cache
def accelerators(backend: str) -> list[str]:
    """Names of the GPUs (or TPUs) the backend sees; [] on a CPU-only machine. Asked once per process: precision,
    distribution, XLA and the run's record all depend on it, and the devices do not change."""
    return ACCELERATORS[backend]()


def precision_policy(setting: str, backend: str) -> str:
    """Keras dtype policy for --mixed-precision: auto is bfloat16 on an accelerator (no loss scaling needed;
    measured on the H100: ../shared/gpu/README.md), float32 on a CPU."""
    if setting in ("auto", "on"):
        return "mixed_bfloat16" if (setting == "on" or accelerators(backend)) else "float32"
    return {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[setting]


def _data_parallel_devices(backend: str) -> list:
    if backend == "jax":
        import jax

        return jax.devices()
    from edge_emnist.tf_keras_env import tf

    return [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))]


def distribution(keras, backend: str, setting: str) -> tuple[contextlib.AbstractContextManager, int]:
    """(scope to build, compile and fit in, replicas). auto: data parallel over 2+ accelerators; mirrored: data
    parallel over every device, CPUs included (how the tests exercise it)."""
    if setting == "none" or (setting == "auto" and len(accelerators(backend)) < 2):
        return contextlib.nullcontext(), 1
    if BACKENDS[backend].data_parallel is None:
        if setting == "auto":
            print(f"edge-emnist: {backend} trains on one device here; use --backend jax or tensorflow for several",
                  file=sys.stderr)
            return contextlib.nullcontext(), 1
        raise EdgeEmnistError(f"--distribute mirrored needs --backend jax or tensorflow, not {backend}")
    devices = _data_parallel_devices(backend)
    if backend == "jax":
        return keras.distribution.DataParallel(devices=devices).scope(), len(devices)
    from edge_emnist.tf_keras_env import tf

    strategy = tf.distribute.MirroredStrategy(devices)
    return strategy.scope(), strategy.num_replicas_in_sync


def jit_compile(backend: str) -> bool | str:
    """XLA for the training step: Keras decides ("auto"), except TensorFlow on a CPU, where XLA doubled the step
    (2-core AVX2 EPYC, batch 256: LeNet-5 66 -> 33 ms, simple_cnn 256 -> 118 ms without it)."""
    return False if backend == "tensorflow" and not accelerators(backend) else "auto"


def batch_multiple(backend: str, replicas: int) -> int:
    """What every batch's size must be a multiple of: JAX shards each batch evenly over the devices (a short last
    batch is padded, with zero sample weights); MirroredStrategy splits uneven batches itself."""
    return replicas if backend == "jax" else 1


def device_description(keras, backend: str) -> dict:
    """What trained a run: recorded in metrics.json so every figure says where it came from."""
    from edge_emnist.device.host import host_description  # numpy only

    host = host_description()
    versions = {"keras": keras.__version__, "backend": backend}
    module = importlib.import_module(BACKENDS[backend].module)
    versions[backend] = getattr(module, "__version__", "")
    return {
        "gpus": accelerators(backend),
        "cpu": host["cpu"],
        "isa": host["isa"],
        "cores": host["cores"],
        "python": host["python"],
        "platform": host["os"],
        **versions,
    }


def batches_for_keras(keras, batches, workers: int = 1):
    """`data.pipeline.Batches` as Keras' own batch source: a PyDataset in Keras 3, a Sequence in tf_keras (fine-
    tuning). Batches are a pure function of (seed, epoch, index), so Keras 3's `workers` threads may make them
    ahead; the epoch advances in on_epoch_end, after Keras stops prefetching. Fit with shuffle=False: the batches
    shuffle themselves, so a resume is exact."""
    base = getattr(keras.utils, "PyDataset", None)
    options = {"workers": workers, "use_multiprocessing": False} if base else {}

    class PyBatches(base or keras.utils.Sequence):
        def __init__(self):
            super().__init__(**options)

        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, index: int):
            return batches[index]

        def on_epoch_end(self) -> None:
            batches.on_epoch_end()

    return PyBatches()
