"""Pictures of a dataset: a grid of upright samples titled with their characters, a class histogram."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from edge_emnist.data.registry import DatasetSpec  # noqa: E402
from edge_emnist.io import save_figure  # noqa: E402

_CJK_FONT_HINTS = ("CJK", "Noto Sans JP", "IPAGothic", "IPAexGothic", "TakaoGothic", "VL Gothic")


@cache
def _cjk_font() -> str | None:
    for font in font_manager.fontManager.ttflist:
        if any(hint in font.name for hint in _CJK_FONT_HINTS):
            return font.name
    return None


def _title_style(spec: DatasetSpec) -> tuple[bool, dict]:
    """Whether to fall back to ASCII names (hiragana without a CJK font), and the font to use."""
    needs_cjk = any(ord(ch) > 0x2FFF for label in spec.labels for ch in label)
    if not needs_cjk:
        return False, {}
    font = _cjk_font()
    return (font is None), ({"fontfamily": font} if font else {})


def sample_grid(images: np.ndarray, labels: np.ndarray, spec: DatasetSpec, output: Path, *, title: str = "") -> Path:
    """PNG grid of upright images, each titled with its character."""
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    ascii_only, font = _title_style(spec)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.05 + 0.5), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(spec.display_label(int(label), ascii_only), fontsize=10, pad=2, **font)
    fig.suptitle(title or spec.name, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, output)


def class_histogram(counts: dict[str, np.ndarray], spec: DatasetSpec, output: Path, *, title: str = "") -> Path:
    """Grouped bars of images per class, one colour per split."""
    ascii_only, font = _title_style(spec)
    classes = np.arange(spec.num_classes)
    width = 0.8 / max(len(counts), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, spec.num_classes * 0.28), 3.6), dpi=100)
    for i, (split, per_class) in enumerate(counts.items()):
        ax.bar(classes + (i - (len(counts) - 1) / 2) * width, per_class, width, label=f"{split} ({per_class.sum():,})")
    ax.set_xticks(classes, [spec.display_label(c, ascii_only) for c in classes], **font)
    ax.set_xlim(-0.6, spec.num_classes - 0.4)
    ax.set_ylabel("images")
    ax.set_xlabel("class")
    ax.set_title(title or f"{spec.name}: images per class")
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, output)
