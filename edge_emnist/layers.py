"""The package's layers, lowest first: a module imports only from its own unit (package or top-level module) and
from units of lower layers, never from its own layer's other units or from above (tests/test_layers.py checks
every import, deferred ones inside functions included). docs/architecture.md says what each unit owns.
"""

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "environ", "workspace", "progress", "layers", "options", "tables"),  # import nothing of the package
    ("io", "tensorboard_log", "tracking"),  # atomic writes, JSONL appends, locks; TensorBoard scalars; MLflow
    ("device",),  # what runs where the model runs; its RUNNER_FILES are copied to devices as they are
    ("data", "targets"),  # datasets; machines that run the device runner (here, QEMU, SSH)
    ("tf_keras_env",),  # TensorFlow with tf_keras (for tfmot), imported in one place
    ("models",),  # the architectures, built by tf_keras or Keras 3
    ("keras3",),  # the training engine: backend, devices, precision, optimizers
    ("runs",),  # a run's schema and folder
    ("distill",),  # teachers checked against a student run; the distillation wrapper and loss
    ("train", "optimize"),  # the training loop; pruning and QAT fine-tuning
    ("export", "bench", "demo"),  # artifacts and cards; measuring them; the browser demo
    ("robustness",),
    ("report",),
    ("sweep", "pipeline", "doctor", "search"),
    ("train_commands",),  # train, sweep, distill, prune, qat on the command line
    ("cli",),
)
