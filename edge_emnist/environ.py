"""Environment variables more than one layer reads (a plain module at the bottom: importing it loads nothing)."""

# EDGE_EMNIST_LOGICAL_CPUS=N splits the CPU into N logical devices, in TensorFlow (tf_keras_env) and JAX (keras3),
# so the multi-device paths run on a machine without GPUs (the tests use it).
LOGICAL_CPUS_ENV = "EDGE_EMNIST_LOGICAL_CPUS"
