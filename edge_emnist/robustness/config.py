"""What `robustness` takes (plain dataclass: the command line is generated from it before anything heavy loads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_emnist.options import option
from edge_emnist.workspace import COMMITTED_ROBUSTNESS, USER_ROBUSTNESS


@dataclass
class RobustnessOptions:
    images: int = option(2000, help="test images per condition, a seeded random sample")
    mnist_images: int = option(10_000, help="MNIST test digits, a seeded sample (fewer for slow models)")
    seed: int = option(0, type=int, help="picks the sample, shift directions and noise")
    threads: int = option(2, help="runtime threads")
    results: Path = option(USER_ROBUSTNESS, help=f"JSONL file to append to (the committed measurements are "
                                                 f"{COMMITTED_ROBUSTNESS})")
