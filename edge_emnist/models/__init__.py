"""Model registry: `@register("lenet5")` on a builder, `create_model("lenet5", num_classes=47)` to build.

Builders take `num_classes` plus their own keyword options and return an uncompiled Keras model whose
output is a float32 softmax (so mixed precision never changes what the head emits).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_emnist.errors import EdgeEmnistError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    description: str
    family: bool = False  # a parametric family: its options are part of a run's and an artifact's name
    imported: bool = False  # a model trained elsewhere (models/external.py): exported, never trained here


_REGISTRY: dict[str, ModelEntry] = {}
# architecture -> module that registers it. Listing names needs no TensorFlow import (CLI start-up stays
# fast); a module is imported only when one of its models is looked up.
ARCHITECTURES = {
    "lenet5": "lenet5",
    "lenet5_relu": "lenet5",
    "simple_cnn": "simple_cnn",
    "custom_resnet": "custom_resnet",
    "custom_vgg": "custom_vgg",
    "resnet50": "resnet50",
    "edgenet": "edgenet",
}
IMPORTED = {"external": "external"}  # not trainable, not in list_models(): `export FILE` makes such runs


def register(name: str, description: str = "", family: bool = False,
             imported: bool = False) -> Callable[[Callable], Callable]:
    def decorate(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, description or (builder.__doc__ or "").strip().splitlines()[0],
                                     family, imported)
        return builder

    return decorate


def list_models() -> list[str]:
    return list(ARCHITECTURES)


def model_entry(name: str) -> ModelEntry:
    modules = {**ARCHITECTURES, **IMPORTED}
    if name not in modules:
        raise EdgeEmnistError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHITECTURES)}")
    importlib.import_module(f"edge_emnist.models.{modules[name]}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int, *, keras=None, **options):
    """Build `name`; `keras` picks the Keras module (Keras 3 for training), tf_keras when left out."""
    from edge_emnist.models.keras_api import building_with

    with building_with(keras):
        return model_entry(name).builder(num_classes=num_classes, **options)


def parse_model_options(name: str, items: list[str]) -> dict:
    """["width=0.5", "depths=1,2,2", "separable=true"] -> the builder's keyword options, each converted to the type
    of that option's default in the builder's signature (a one-line error for an unknown name or a bad value)."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(model_entry(name).builder).parameters.items()
                if p.default is not inspect.Parameter.empty}
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in defaults:
            raise EdgeEmnistError(f"{name} takes the options {', '.join(f'{k}=' for k in defaults) or 'none'}; "
                                  f"got {item!r}")
        default = defaults[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1", "yes")
            elif isinstance(default, tuple):
                value = tuple(type(default[0])(v) for v in text.split(","))
            elif default is None:
                value = int(text)
            else:
                value = type(default)(text)
        except ValueError:
            raise EdgeEmnistError(f"{name} option {key}: {text!r} is not like its default {default!r}") from None
        options[key] = value
    return options


def shape_tag(name: str, options: dict) -> str:
    """"-width0.5-depths1.2.2" for a family's options (sorted), "" for a fixed architecture: what keeps two shapes of
    one family apart in run folders and artifact names."""
    if name in IMPORTED:  # the imported file's name keeps two imported models apart
        return "-" + "".join(c if c.isalnum() or c in "._" else "_" for c in Path(options.get("file", "")).stem)
    if not options or not model_entry(name).family:
        return ""
    return "".join(f"-{key}{'.'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                   for key, v in sorted(options.items()))
