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
    remove_orphans(path.parent)
    # The temporary ends with the real name, so writers that choose a format by suffix (".weights.h5",
    # ".png") pick the same one; it starts with the writer's pid, so a later writer can tell an orphan.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=f".{path.name}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the finished file gets the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_orphans(folder: Path) -> None:
    """Delete temporaries left by writers that were killed outright (SIGKILL, power loss: no `finally` ran): a
    `.tmp-<pid>-...` whose process no longer exists on this machine."""
    for tmp in folder.glob(".tmp-*-*"):
        pid = tmp.name[5:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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


def check_writable(folder: str | Path) -> None:
    """Fail before long work, not after it: the folder (or its nearest existing parent) must take new files."""
    from edge_emnist.errors import EdgeEmnistError

    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EdgeEmnistError(f"{folder}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise EdgeEmnistError(f"{folder}: {existing} is not writable")


def check_results_file(path: str | Path, *, must_exist: bool = False) -> Path:
    """A results file must be a regular file (or, to be appended to, not exist yet): a folder, a FIFO or a device
    is refused before any work, in one line, instead of failing (or hanging) after it."""
    import stat

    from edge_emnist.errors import EdgeEmnistError

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        if must_exist:
            raise EdgeEmnistError(f"no benchmark results at {path} (run `edge-emnist bench` first)") from None
        check_writable(path.parent)
        return path
    except OSError as error:
        raise EdgeEmnistError(f"{path}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise EdgeEmnistError(f"{path} is {what}: results are a JSONL file (give a file path such as runs/bench.jsonl)")
    return path


def append_jsonl(path: str | Path, records: list[dict]) -> None:
    """Append JSON lines so that a crash never corrupts what was there: the lines are written in one call, a
    torn last line left by an earlier crash is cut off first, and the data is flushed to disk before return."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a torn line from a crash: drop it rather than glue records onto it
                f.seek(0)
                data = f.read()
                f.truncate(data.rfind(b"\n") + 1)
                f.seek(0, os.SEEK_END)
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def strip_optimizer_state(path: str | Path) -> None:
    """Drop the optimizer's slots from a Keras `.weights.h5` file (Keras saves them when the model is
    compiled): Adam keeps two per weight, so they are two thirds of the file, and nothing that loads
    best/last weights needs them (resuming uses the checkpoint). The file is rewritten, not edited, because
    HDF5 never gives deleted space back."""
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as source:
        if "optimizer" not in source:
            return
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as target:
            for key, value in source.attrs.items():
                target.attrs[key] = value
            for name in source:
                if name != "optimizer":
                    source.copy(source[name], target, name=name)


def save_weights(model, path: str | Path) -> None:
    """Save a Keras model's weights atomically, without optimizer state."""
    with atomic_path(path) as tmp:
        model.save_weights(str(tmp))
        strip_optimizer_state(tmp)


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, keep_file: bool = True) -> Iterator[None]:
    """Hold `folder/.lock` for the block; a second holder gets a one-line error naming the first one.

    An OS lock (flock), so a killed process never leaves a stale lock: the kernel drops it with the process.
    `keep_file=False` (folders of deliverables, such as an export folder) locks the folder itself and removes
    the `.lock` note, which only names the holder, when the block ends: nothing is left beside the artifacts.
    """
    if not keep_file:
        with _directory_lock(Path(folder)):
            yield
        return
    import fcntl
    import json

    from edge_emnist.errors import EdgeEmnistError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            raise EdgeEmnistError(_in_use(folder, holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder()))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


@contextlib.contextmanager
def _directory_lock(folder: Path) -> Iterator[None]:
    """flock on the folder's own descriptor; `.lock` holds the holder's description while it holds it."""
    import fcntl
    import json

    from edge_emnist.errors import EdgeEmnistError

    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    note = folder / ".lock"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(note.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            raise EdgeEmnistError(_in_use(folder, holder)) from None
        note.write_text(json.dumps(_holder()))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                note.unlink()
    finally:
        os.close(fd)  # releases the lock


def _holder() -> dict:
    import platform
    import sys
    import time

    return {"pid": os.getpid(), "host": platform.node(), "since": time.strftime("%H:%M:%S"),
            "command": " ".join(["edge-emnist", *sys.argv[1:]])[:200]}


def _in_use(folder: Path, holder: dict) -> str:
    return (f"{folder} is in use by process {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(`{holder.get('command', '?')}`, since {holder.get('since', '?')}); wait for it, or use another folder")
