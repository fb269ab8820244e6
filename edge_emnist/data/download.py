"""Fetching the official releases: resumable, checksummed, and safe to extract.

A download goes to `<name>.part` and is renamed only once its sha256 matches, so the cache never holds a
half-written or wrong file under a real name. An interrupted download resumes with an HTTP Range request.
"""

from __future__ import annotations

import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from edge_emnist.data.registry import DatasetSpec, Family
from edge_emnist.device.files import sha256_file
from edge_emnist.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 30
OFFLINE_HINT = (
    "no network? point --data-dir or EDGE_EMNIST_DATA at a local copy of the files "
    "(e.g. EDGE_EMNIST_DATA=../shared/data)"
)


class _Retryable(Exception):
    """This URL failed (network, HTTP error, short read); another mirror or a later resume may work."""


def _transfer(url: str, part: Path, progress: bool, label: str) -> None:
    """Append the rest of `url` to `part`, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "edge-emnist"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to fetch: the part file is already whole
            return
        raise _Retryable(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _Retryable(str(reason)) from None
    with response:
        if response.status != 206:  # server ignored the Range: start again
            offset = 0
        remaining = response.headers.get("Content-Length")
        total = offset + int(remaining) if remaining is not None else None
        mode = "ab" if offset else "wb"
        received = offset
        with (
            open(part, mode) as out,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=label, disable=not progress, leave=False) as bar,
        ):
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (TimeoutError, http.client.IncompleteRead, OSError) as e:
                raise _Retryable(f"connection lost after {received:,} bytes ({e.__class__.__name__})") from None
        if total is not None and received < total:
            raise _Retryable(f"connection closed after {received:,} of {total:,} bytes")


def fetch(urls: Iterable[str], dest: Path, sha256: str | None, *, progress: bool = True) -> Path:
    """Download `dest` from the first URL that works; verify; rename into place. Resumes `.part` files."""
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            _transfer(url, part, progress, dest.name)
        except _Retryable as e:
            failures.append(f"{url}: {e}")
            continue
        if sha256 is not None:
            got = sha256_file(part)
            if got != sha256:
                part.unlink()
                raise DataError(
                    f"{dest.name}: sha256 mismatch after download from {url} (got {got[:12]}..., "
                    f"expected {sha256[:12]}...); the partial file was deleted, run again to retry"
                )
        os.replace(part, dest)
        return dest
    kept = f"; {part.stat().st_size:,} bytes kept in {part.name}, run again to resume" if part.exists() else ""
    raise DataError(f"cannot download {dest.name} ({'; '.join(failures)}){kept}; {OFFLINE_HINT}")


def _member_target(member: str, dest_dir: Path, prefix: str, archive: Path) -> Path | None:
    """Where a zip member lands; refuses names that would escape `dest_dir` (zip-slip)."""
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"{archive}: member {member!r} would escape {dest_dir}; refusing to extract")
    name = str(path)
    if member.endswith("/") or not name.startswith(prefix):
        return None
    target = (dest_dir / name[len(prefix):]).resolve()
    if not target.is_relative_to(dest_dir.resolve()):
        raise DataError(f"{archive}: member {member!r} would escape {dest_dir}; refusing to extract")
    return target


def safe_extract(archive: Path, dest_dir: Path, prefix: str = "") -> list[Path]:
    """Extract members under `prefix` into `dest_dir` (flattened). Every name is checked before any write."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            plan = [(info, _member_target(info.filename, dest_dir, prefix, archive)) for info in zf.infolist()]
            written = []
            for info, target in plan:
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                with zf.open(info) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                os.replace(tmp, target)
                written.append(target)
            return written
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive}: not a valid zip archive ({e})") from None


def family_urls(family: Family, filename: str, mirror: str | None = None) -> list[str]:
    """Candidate URLs for one file (or the family's archive). A mirror replaces the official hosts."""
    if mirror:
        return [f"{mirror.rstrip('/')}/{family.name}/{filename}"]
    if family.archive:
        return list(family.urls)
    return [base + filename for base in family.urls]


def download(spec: DatasetSpec, dest_dir: Path, *, mirror: str | None = None, progress: bool = True) -> Path:
    """Put the official files of `spec` into `dest_dir`, verified against the official sha256."""
    dest_dir = Path(dest_dir)
    mirror = mirror or os.environ.get("EDGE_EMNIST_MIRROR")
    family = spec.family
    wanted = spec.filenames()
    if all((dest_dir / name).exists() for name in wanted):
        return dest_dir
    if family.archive is None:
        for name in wanted:
            fetch(family_urls(family, name, mirror), dest_dir / name, spec.official_sha256(name), progress=progress)
        return dest_dir
    # One archive holds every dataset of the family: extract it all once, verify, drop the archive.
    archive = fetch(family_urls(family, family.archive, mirror), dest_dir / family.archive, None, progress=progress)
    if not zipfile.is_zipfile(archive):  # a proxy's error page, say: kept, it would poison every later run
        size, head = archive.stat().st_size, archive.read_bytes()[:16]
        archive.unlink()
        raise DataError(f"what arrived as {archive.name} is not a zip archive ({size:,} bytes starting {head!r}); "
                        "it was deleted: check the network or the mirror and run again")
    extracted = safe_extract(archive, dest_dir, family.archive_prefix)
    checksums = family.official()
    for path in extracted:
        expected = checksums.get(path.name)
        if expected and sha256_file(path) != expected[0]:
            for p in extracted:
                p.unlink(missing_ok=True)
            raise DataError(f"{archive}: {path.name} does not match its official sha256; archive kept for inspection")
    archive.unlink()
    missing = [name for name in wanted if not (dest_dir / name).exists()]
    if missing:
        raise DataError(f"{archive.name} did not contain {', '.join(missing)}")
    return dest_dir
