"""Knowledge distillation on Keras 3: the teachers, checked against the student's run, and the model `fit` trains.

The teachers run inside the training graph, on the same (augmented) batch the student sees, so their soft targets
follow the augmentation instead of being computed once on plain images. `fit` trains a wrapper whose output is
the student's logits beside every teacher's; the loss splits them (`distillation_loss`). The student's own
model (softmax head and all) shares the layers, so the run's weights are the student's alone and everything after
training (export, bench) sees an ordinary run. Backend-neutral: keras.ops on Keras 3; on tf_keras (pruning and QAT
fine-tuning, optimize/finetune.py) the same loss runs on TensorFlow's equivalents of those few ops.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from edge_emnist.data.registry import get_dataset
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import EdgeEmnistError
from edge_emnist.models import create_model
from edge_emnist.runs import DistillConfig, Run, TrainConfig, open_run

LOGITS_LAYER = "logits"  # every architecture ends in classifier_head: Dense "logits" -> softmax


def check_teachers(student: TrainConfig, settings: DistillConfig) -> list[Run]:
    """The teacher runs, refused with the reason when they cannot teach this student."""
    settings.validate()
    classes = get_dataset(student.dataset).num_classes
    teachers = []
    for path in settings.teachers:
        run = open_run(path)
        if run.optimization:
            raise EdgeEmnistError(f"teacher {run.path} is a {run.tag} run; teach with the trained run it came from")
        teacher_classes = get_dataset(run.config.dataset).num_classes
        if run.config.dataset != student.dataset:
            raise EdgeEmnistError(f"teacher {run.path} learned {run.config.dataset} ({teacher_classes} classes); "
                                  f"the student learns {student.dataset} ({classes} classes): the answers must be "
                                  "over the same classes")
        teachers.append(run)
    return teachers


def resolved(settings: DistillConfig, teachers: list[Run]) -> dict:
    """What config.json keeps: the settings, and each teacher's weights hash (the teacher may be retrained later)."""
    return {**dataclasses.asdict(settings), "teachers": [str(run.path) for run in teachers],
            "teacher_sha256": [sha256_file(run.weights) for run in teachers],
            "teacher_test_accuracy": [run.metrics.get("test_accuracy") for run in teachers]}


def recorded_teachers(recorded: dict) -> list[Run]:
    """The teachers a run's config.json names, each still the file it learned from (a resume must not switch)."""
    teachers = []
    for path, digest in zip(recorded["teachers"], recorded["teacher_sha256"], strict=True):
        run = open_run(path)
        if sha256_file(run.weights) != digest:
            raise EdgeEmnistError(f"teacher {run.weights} changed since this student started learning from it "
                                  "(sha256 differs): resume with the same teacher or start a new run")
        teachers.append(run)
    return teachers


def logits_layer(model):
    """The logits Dense, or the wrapper pruning or QAT put around it (tfmot keeps the wrapped layer as `.layer`):
    a fine-tuned student learns from its quantized or pruned logits, which are what its int8 file answers with."""
    for layer in model.layers:
        if LOGITS_LAYER in (layer.name, getattr(getattr(layer, "layer", None), "name", None)):
            return layer
    raise EdgeEmnistError(f"model {model.name} has no {LOGITS_LAYER!r} layer: it cannot be distilled")


def logits_model(keras, model, name: str | None = None):
    """The same layers up to the logits (no softmax): what distillation softens."""
    return keras.Model(model.inputs, logits_layer(model).output, name=name or f"{model.name}_logits")


def teacher_models(keras, teachers: list[Run], num_classes: int) -> list:
    """Each teacher's logits on the active Keras 3 backend, frozen, with its best weights."""
    models = []
    for i, run in enumerate(teachers):
        model = create_model(run.config.arch, num_classes, keras=keras, **run.config.model_options)
        try:
            model.load_weights(str(run.weights))
        except (ValueError, KeyError) as error:
            raise EdgeEmnistError(f"teacher {run.weights} does not load into {run.config.arch}: {error}") from None
        model.trainable = False
        teacher = logits_model(keras, model, name=f"teacher{i}_{run.config.arch}")  # tf_keras names only at birth
        teacher.trainable = False
        models.append(teacher)
    return models


def distiller(keras, student, teachers: list, num_classes: int, settings: dict):
    """(model for fit, its loss, its accuracy metric): outputs [student logits | teacher 1 logits | ...]."""
    image = keras.Input(shape=student.input_shape[1:], name="image")
    student_logits = logits_model(keras, student)(image)
    outputs = [student_logits, *(teacher(image, training=False) for teacher in teachers)]
    joined = keras.layers.Concatenate(axis=-1, dtype="float32", name="student_and_teachers")(outputs)
    model = keras.Model(image, joined, name=f"{student.name}_distiller")
    return (model, distillation_loss(keras, num_classes, len(teachers), settings["temperature"],
                                     settings["soft_weight"]), student_accuracy(keras, num_classes))


def _ops(keras):
    """keras.ops on Keras 3; TensorFlow's same six ops on tf_keras, which has no keras.ops."""
    if hasattr(keras, "ops"):
        return keras.ops
    from edge_emnist.tf_keras_env import tf  # only reached on tf_keras, which that module set up

    return SimpleNamespace(cast=tf.cast, softmax=tf.nn.softmax, log_softmax=tf.nn.log_softmax, sum=tf.reduce_sum,
                           log=tf.math.log, maximum=tf.maximum)


def distillation_loss(keras, num_classes: int, count: int, temperature: float, soft_weight: float):
    ops = _ops(keras)

    def loss(labels, joined):
        joined = ops.cast(joined, "float32")
        student = joined[:, :num_classes]
        hard = keras.losses.sparse_categorical_crossentropy(labels, student, from_logits=True)
        if soft_weight == 0:
            return hard
        soft_targets = sum(ops.softmax(joined[:, (i + 1) * num_classes:(i + 2) * num_classes] / temperature)
                           for i in range(count)) / count
        log_student = ops.log_softmax(student / temperature)
        kl = ops.sum(soft_targets * (ops.log(ops.maximum(soft_targets, 1e-12)) - log_student), axis=-1)
        return (1 - soft_weight) * hard + soft_weight * temperature ** 2 * kl

    return loss


def student_accuracy(keras, num_classes: int):
    def accuracy(labels, joined):
        return keras.metrics.sparse_categorical_accuracy(labels, joined[:, :num_classes])

    return accuracy
