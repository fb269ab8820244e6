"""What `demo` takes (plain dataclass: the command line is generated from it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_emnist.options import option
from edge_emnist.workspace import SHIPPED_EXPORTS


@dataclass
class DemoOptions:
    port: int = option(8000, type=int, help="port to listen on (0: any free port)")
    host: str = option("127.0.0.1", help="address to bind (127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                                         "network)")
    exported: Path = option(SHIPPED_EXPORTS, help="models to offer")
    build: bool = option(False, help="install onnxruntime-web with npm first (needed once)")
    open: bool = option(False, help="open the page in the default browser")
