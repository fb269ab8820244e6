"""Structured pruning: remove whole filters (and dense units), then rebuild the smaller dense model.

Magnitude pruning leaves a kernel of the same shape full of zeros, which no CPU kernel skips. Removing a filter
removes an output channel of its convolution *and* the matching input channel of whatever consumes it, so the
rebuilt model does fewer multiply-adds everywhere it runs.

A layer is prunable when its output reaches exactly one consumer through channel-wise layers only:

    conv/dense -> [batch norm, activation, pooling, padding, dropout, depthwise conv]* -> conv | dense
                                                          (through flatten or global pooling to a dense)

A residual add or a concatenation ties the channels of several layers together, so a layer feeding one is left
whole (custom_resnet keeps its block outputs and prunes the first convolution inside each block); the classifier
is never pruned. The plan ({layer: filters kept}) is all a run needs to rebuild the model for export: the
architecture is built as usual, then narrowed by `narrow(model, plan)`, then the pruned run's weights load into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_emnist.errors import EdgeEmnistError
from edge_emnist.optimize.config import CRITERIA

# Layers that pass channels through one to one: they carry the producer's channel selection to its consumer.
CHANNELWISE = {"BatchNormalization", "ReLU", "Activation", "LeakyReLU", "MaxPooling2D", "AveragePooling2D",
               "ZeroPadding2D", "Dropout", "DepthwiseConv2D"}
SPATIAL_FLATTEN = {"Flatten"}
GLOBAL_POOLS = {"GlobalAveragePooling2D", "GlobalMaxPooling2D"}
PRODUCERS = {"Conv2D", "Dense"}


@dataclass
class Group:
    """One prunable layer and the layers its channels pass through to the one consumer."""

    producer: str
    consumer: str
    followers: list[str] = field(default_factory=list)
    flatten: str | None = None  # a Flatten between them: the consumer's rows are (position, channel)


def _consumers(model) -> dict[str, list[str]]:
    """layer name -> names of the layers that take its output (from the functional config: no graph internals)."""
    out: dict[str, list[str]] = {layer.name: [] for layer in model.layers}
    for entry in model.get_config()["layers"]:
        for node in entry.get("inbound_nodes", []):
            for inbound in node:
                out[inbound[0]].append(entry["config"]["name"])
    return out


def prunable_groups(model) -> list[Group]:
    """Every layer whose filters can be removed without touching another layer's channels."""
    consumers = _consumers(model)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    outputs = {tensor.name.split("/")[0] for tensor in model.outputs}
    groups = []
    for layer in model.layers:
        if kinds[layer.name] not in PRODUCERS or getattr(layer, "groups", 1) != 1:
            continue
        group, name = Group(layer.name, ""), layer.name
        while True:
            nexts = consumers[name]
            if len(nexts) != 1 or name in outputs:
                break
            name = nexts[0]
            kind = kinds[name]
            if kind in CHANNELWISE:
                group.followers.append(name)
            elif kind in SPATIAL_FLATTEN | GLOBAL_POOLS and kinds[layer.name] == "Conv2D" and group.flatten is None:
                group.flatten = name if kind in SPATIAL_FLATTEN else None
                group.followers.append(name)
            elif kind in PRODUCERS and getattr(model.get_layer(name), "groups", 1) == 1:
                if kind == "Conv2D" and any(kinds[f] in SPATIAL_FLATTEN | GLOBAL_POOLS for f in group.followers):
                    break
                group.consumer = name
                break
            else:
                break
        if group.consumer:
            groups.append(group)
    return groups


def _width(layer) -> int:
    return layer.filters if type(layer).__name__ == "Conv2D" else layer.units


def filter_scores(model, group: Group, criterion: str) -> np.ndarray:
    """How much each filter of the producer matters: the larger, the more it is kept."""
    if criterion == "bn":
        for name in group.followers:
            layer = model.get_layer(name)
            if type(layer).__name__ == "BatchNormalization":
                if layer.scale:
                    return np.abs(layer.gamma.numpy())
                break
            if type(layer).__name__ not in {"Dropout"}:
                break  # only a batch norm right after the producer says how much its filters are scaled
    kernel = model.get_layer(group.producer).kernel.numpy()
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def keep_count(filters: int, ratio: float) -> int:
    return max(1, int(round(filters * (1 - ratio))))


def choose(model, ratio: float, criterion: str = "l1") -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """The plan ({producer: filters kept}) and the kept filter indices, highest score first then in order."""
    if not 0 < ratio < 1:
        raise EdgeEmnistError(f"--structured must be between 0 and 1 (exclusive), got {ratio}")
    if criterion not in CRITERIA:
        raise EdgeEmnistError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    groups = prunable_groups(model)
    if not groups:
        raise EdgeEmnistError(f"{model.name} has no layer whose filters can be removed on their own")
    plan, kept = {}, {}
    for group in groups:
        scores = filter_scores(model, group, criterion)
        count = keep_count(len(scores), ratio)
        kept[group.producer] = np.sort(np.argsort(-scores, kind="stable")[:count])
        plan[group.producer] = count
    return plan, kept


def narrow(model, plan: dict[str, int]):
    """The same architecture with the plan's layers narrowed (fresh weights): what a structured run rebuilds."""
    config = model.get_config()
    found = set()
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if name in plan:
            key = "filters" if entry["class_name"] == "Conv2D" else "units"
            entry["config"][key] = int(plan[name])
            found.add(name)
    missing = set(plan) - found
    if missing:
        raise EdgeEmnistError(f"the pruning plan names layers {sorted(missing)} that {model.name} does not have")
    return type(model).from_config(config)


def transfer(model, narrowed, kept: dict[str, np.ndarray]) -> None:
    """Copy the kept filters' weights, and the matching input channels of their consumers, into `narrowed`."""
    out_idx = dict(kept)
    in_idx: dict[str, np.ndarray] = {}
    channel_idx: dict[str, np.ndarray] = {}
    for group in prunable_groups(model):
        if group.producer not in kept:
            continue
        idx = kept[group.producer]
        for name in group.followers:
            channel_idx[name] = idx
        if group.flatten:
            height, width, channels = model.get_layer(group.flatten).input_shape[1:]
            positions = np.arange(height * width)[:, None] * channels
            in_idx[group.consumer] = (positions + idx[None, :]).reshape(-1)
        else:
            in_idx[group.consumer] = idx
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kind = type(layer).__name__
        name = layer.name
        if kind in PRODUCERS:
            kernel = weights[0]
            if name in in_idx:
                kernel = np.take(kernel, in_idx[name], axis=-2)
            if name in out_idx:
                kernel = np.take(kernel, out_idx[name], axis=-1)
            rest = [np.take(w, out_idx[name], axis=0) if name in out_idx else w for w in weights[1:]]
            weights = [kernel, *rest]
        elif name in channel_idx:
            if kind == "DepthwiseConv2D":
                weights = [np.take(weights[0], channel_idx[name], axis=2),
                           *[np.take(w, channel_idx[name], axis=0) for w in weights[1:]]]
            else:
                weights = [np.take(w, channel_idx[name], axis=0) for w in weights]
        narrowed.get_layer(name).set_weights(weights)


def prune_filters(model, ratio: float, criterion: str = "l1"):
    """(narrowed model with the kept weights, plan, widths before): the structured-pruning step itself."""
    plan, kept = choose(model, ratio, criterion)
    narrowed = narrow(model, plan)
    transfer(model, narrowed, kept)
    before = {name: _width(model.get_layer(name)) for name in plan}
    return narrowed, plan, before
