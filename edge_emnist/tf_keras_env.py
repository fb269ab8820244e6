"""The one place that imports TensorFlow and Keras.

tensorflow-model-optimization only works with Keras 2 (`tf_keras`), so TF_USE_LEGACY_KERAS must be set
before TensorFlow is first imported. Every module gets `tf` and `keras` from here, never directly.
"""

import os

from edge_emnist.device.runtimes import VERBOSE_ENV, native_stderr_muted  # numpy only
from edge_emnist.environ import LOGICAL_CPUS_ENV

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX. Measured on a
# 2-core AVX2-only EPYC (batch 256 train step): LeNet-5 110 -> 55 ms, simple_cnn 156 -> 115 ms with them on, so
# they are on everywhere unless the user says otherwise.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# C++ start-up chatter (CUDA probing on a machine without GPU, absl's pre-init notice) stays out of the
# terminal unless --verbose; the probing happens when the devices are first listed, so that is done here too.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get(VERBOSE_ENV) == "1" else "2")

with native_stderr_muted():
    import tensorflow as tf
    import tf_keras as keras

    tf.config.list_physical_devices()

__all__ = ["tf", "keras"]


def _split_cpu_for_tests() -> None:
    """EDGE_EMNIST_LOGICAL_CPUS=N splits the CPU into N logical devices, so the multi-device
    (MirroredStrategy) path can be exercised on a machine without GPUs. Must run before TF initialises."""
    count = int(os.environ.get(LOGICAL_CPUS_ENV, "0") or 0)
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


_split_cpu_for_tests()
