"""Options declared once, on the config dataclasses: each field carries its default, help and choices, and the
command line is generated from the fields (`add_options`, `from_args`), as a Python caller builds the same
dataclass. `edge-emnist CMD --help` shows every default because it is read from the field, never retyped.

Plain Python (argparse and dataclasses): the bottom layer, so every config module can use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, *, help: str, default_factory: Any = _MISSING, flag: str | None = None,
           choices: Iterable | Callable[[], Iterable] | None = None, type: Callable[[str], Any] | None = None,
           metavar: str | None = None, negate: str | None = None, shown: str | None = None, nargs: str | None = None,
           cli: bool = True) -> Any:
    """A dataclass field with what the command line needs to offer it.

    `choices` may be a callable (a registry read when the parser is built); `negate`: a boolean that defaults to
    True is offered as this `--no-...` flag; `shown`: the default as help prints it, where the value itself
    says it badly; `cli=False`: the field is for Python callers only."""
    metadata = {"help": help, "flag": flag, "choices": choices, "type": type, "metavar": metavar, "negate": negate,
                "shown": shown, "nargs": nargs, "cli": cli}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def default_of(config: type, name: str) -> Any:
    """The declared default of one field (what a help text or another config may quote)."""
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    return field.default_factory() if field.default_factory is not _MISSING else field.default


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return f"{value}"
    return str(value)


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config: type,
                names: Iterable[str] | None = None, *, defaults: dict[str, Any] | None = None) -> None:
    """One argument per field of `config` (or of `names`, in that order); `defaults` overrides a field's default
    for this command only (and its help says so)."""
    fields = {f.name: f for f in dataclasses.fields(config) if f.metadata.get("cli", False)}
    defaults = defaults or {}
    for name in names or fields:
        meta = fields[name].metadata
        default = defaults[name] if name in defaults else default_of(config, name)
        kwargs: dict[str, Any] = {"dest": name}
        help_text = meta["help"]
        if meta["negate"]:
            parser.add_argument(meta["negate"], dest=name, action="store_false", help=help_text)
            parser.set_defaults(**{name: default})
            continue
        if default is False and meta["type"] is None:
            parser.add_argument(meta["flag"] or f"--{name.replace('_', '-')}", dest=name, action="store_true",
                                help=help_text)
            continue
        choices = meta["choices"]
        if callable(choices):
            choices = choices()
        if choices is not None:
            kwargs["choices"] = list(choices)
            if meta["metavar"]:  # a long list under a short name: the help lists it
                help_text += f"; one of: {', '.join(map(str, kwargs['choices']))}"
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        kwargs["type"] = meta["type"] or _type_of(default)
        if meta["nargs"] == "append":  # a repeatable flag
            kwargs["action"] = "append"
            kwargs["type"] = meta["type"]
        elif meta["nargs"]:
            kwargs["nargs"] = meta["nargs"]
            kwargs["type"] = meta["type"]
        if default is _MISSING:  # a field without a default is a required option
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            if default not in (None, ()) or meta["shown"]:
                help_text += f" (default: {meta['shown'] or _shown(default)})"
        kwargs["help"] = help_text.replace("%", "%%")
        parser.add_argument(meta["flag"] or f"--{name.replace('_', '-')}", **kwargs)


def _type_of(default: Any) -> Callable[[str], Any] | None:
    if isinstance(default, bool) or default is None:
        return None
    if isinstance(default, int):
        return positive_int
    if isinstance(default, float):
        return finite_float
    if isinstance(default, Path):
        return Path
    if isinstance(default, tuple) and all(isinstance(v, int) for v in default):
        return int_list
    return None


def from_args(config: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The config with every field the command line offered taken from `args`, plus `extra`."""
    taken = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)
             if f.metadata.get("cli", False) and hasattr(args, f.name)}
    return config(**{**taken, **extra})


# --- value types: a bad value is a usage error naming the option ----------------------------------------------

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _number(text: str, want: str = "a number") -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want {want}, got {text!r}") from None


def finite_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero: nan would mean "no limit" and inf no limit either."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def fraction(text: str) -> float:
    value = _number(text, "a fraction such as 0.88")
    if not 0 <= value <= 1:  # False for nan
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def open_fraction(text: str) -> float:
    value = fraction(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a comma list of integers such as 1,2, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"want positive integers, got {text!r}")
    return values


def name_list(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)
