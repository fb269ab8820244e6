"""The declared layer order (edge_emnist/layers.py) holds for every import of every module, deferred ones too."""

from __future__ import annotations

import ast
from pathlib import Path

import edge_emnist
from edge_emnist.layers import LAYERS

ROOT = Path(edge_emnist.__file__).parent


def unit_of(module: str) -> str:
    """edge_emnist.device.runner -> device; edge_emnist.cli -> cli; edge_emnist -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_unit(name: str) -> bool:
    return (ROOT / f"{name}.py").exists() or (ROOT / name / "__init__.py").exists()


def imports() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(imported unit, file:line)} for every `from edge_emnist... import` and `import edge_emnist...`."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        unit = parts[0] if len(parts) > 1 else path.stem
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edge_emnist"):
                names = [node.module] if node.module != "edge_emnist" else [
                    f"edge_emnist.{a.name}" if _is_unit(a.name) else "edge_emnist" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("edge_emnist.")]
            for name in names:
                found.setdefault(unit, set()).add((unit_of(name), f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def test_every_unit_has_a_layer():
    declared = {unit for layer in LAYERS for unit in layer}
    on_disk = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert on_disk == declared


def test_nothing_imports_its_own_layer_or_above():
    level = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    level["__init__"] = -1  # edge_emnist/__init__.py: the version string
    wrong = sorted(f"{where}: {unit} imports {target}" for unit, targets in imports().items()
                   for target, where in targets if target != unit and level[target] >= level[unit])
    assert not wrong, "\n".join(wrong)


def test_the_device_layer_ships_alone():
    """What the runner copies to a device imports only itself and errors (nothing of the rest of the package)."""
    device = {target for target, _ in imports()["device"]}
    assert device <= {"device", "errors"}
