"""Writing files so that a crash or Ctrl-C never leaves a half-written one under its real name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary ends with the real name, so writers that choose a format by suffix (".weights.h5",
    # ".png") pick the same one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f".{path.name}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the finished file gets the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(fig, output: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically, at the figure's own dpi, and free it."""
    import matplotlib.pyplot as plt

    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    plt.close(fig)
    return Path(output)
