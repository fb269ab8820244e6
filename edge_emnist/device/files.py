"""What a file is: its sha256 (the identity every card, record and run names) and its sizes raw and gzipped.

One hash helper for the whole package; plain Python, one of the RUNNER_FILES copied to devices.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sizes(path: Path) -> dict[str, int]:
    """Raw bytes and `gzip -9` bytes: what an app bundle and a download cost."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}
