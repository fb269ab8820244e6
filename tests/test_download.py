"""The download path against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from edge_emnist.data import download as dl
from edge_emnist.data.registry import get_dataset
from edge_emnist.data.source import load_dataset
from edge_emnist.errors import DataError
from tests.conftest import write_tiny


class FixtureServer(http.server.ThreadingHTTPServer):
    """Serves `files` (path -> bytes) with Range support; can cut the first response short."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None  # bytes sent before dropping the connection, once

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    server: FixtureServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        range_header = self.headers.get("Range")
        self.server.requests.append((self.path, range_header))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(range_header.split("=")[1].rstrip("-")) if range_header else 0
        if start >= len(body):
            self.send_error(416)
            return
        self.send_response(206 if range_header else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.server.cut_after is not None:
            payload, self.server.cut_after = payload[: self.server.cut_after], None
        self.wfile.write(payload)


@pytest.fixture
def server():
    srv = FixtureServer({})
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


BLOB = bytes(range(256)) * 4000  # ~1 MB
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def test_fetch_verifies_and_renames(server, tmp_path):
    server.files["/f.gz"] = BLOB
    out = dl.fetch([server.url + "/f.gz"], tmp_path / "f.gz", BLOB_SHA, progress=False)
    assert out.read_bytes() == BLOB and not (tmp_path / "f.gz.part").exists()


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.files["/f.gz"] = BLOB
    server.cut_after = 300_000
    with pytest.raises(DataError, match=r"kept in f\.gz\.part, run again to resume"):
        dl.fetch([server.url + "/f.gz"], tmp_path / "f.gz", BLOB_SHA, progress=False)
    kept = (tmp_path / "f.gz.part").stat().st_size
    assert 0 < kept < len(BLOB) and not (tmp_path / "f.gz").exists()
    dl.fetch([server.url + "/f.gz"], tmp_path / "f.gz", BLOB_SHA, progress=False)
    assert server.requests[-1] == ("/f.gz", f"bytes={kept}-")
    assert (tmp_path / "f.gz").read_bytes() == BLOB


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.files["/f.gz"] = BLOB
    with pytest.raises(DataError) as err:
        dl.fetch([server.url + "/f.gz"], tmp_path / "f.gz", "0" * 64, progress=False)
    assert "sha256 mismatch" in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_next_mirror(server, tmp_path):
    server.files["/b/f.gz"] = BLOB
    dl.fetch([server.url + "/a/f.gz", server.url + "/b/f.gz"], tmp_path / "f.gz", BLOB_SHA, progress=False)
    assert [p for p, _ in server.requests] == ["/a/f.gz", "/b/f.gz"]


def test_offline_gives_one_line_with_a_hint(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError) as err:
        dl.fetch([f"http://127.0.0.1:{port}/f.gz"], tmp_path / "f.gz", BLOB_SHA, progress=False)
    message = str(err.value)
    assert "\n" not in message and "EDGE_EMNIST_DATA" in message and "--data-dir" in message
    assert not any(tmp_path.iterdir())


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("evil", ["../escape.gz", "gzip/../../escape.gz", "/abs/escape.gz"])
def test_zip_member_escaping_is_refused(tmp_path, evil):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"gzip/ok.gz": b"fine", evil: b"evil"}))
    target = tmp_path / "out"
    with pytest.raises(DataError, match="would escape"):
        dl.safe_extract(archive, target, "gzip/")
    assert not (tmp_path / "escape.gz").exists() and not (target / "ok.gz").exists()  # checked before any write


def test_bad_zip(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        dl.safe_extract(archive, tmp_path / "out")


def _with_checksums(spec, folder: Path):
    sums = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in folder.iterdir()}
    return dataclasses.replace(spec, family=dataclasses.replace(spec.family, checksums=sums))


def test_emnist_archive_download_end_to_end(server, tmp_path):
    """The EMNIST path: one zip, members under gzip/, verified per file, archive removed afterwards."""
    source = tmp_path / "release"
    spec = get_dataset("emnist-balanced")
    write_tiny(spec, source)
    spec = _with_checksums(spec, source)
    server.files["/emnist/gzip.zip"] = _zip({f"gzip/{p.name}": p.read_bytes() for p in source.iterdir()})
    cache = tmp_path / "cache"
    folder = dl.download(spec, cache / "emnist", mirror=server.url, progress=False)
    data = load_dataset(spec, cache_dir=cache)
    assert folder == cache / "emnist" and data.provenance.official
    assert not (folder / "gzip.zip").exists()


def test_emnist_archive_with_a_corrupt_member(server, tmp_path):
    source = tmp_path / "release"
    spec = get_dataset("emnist-balanced")
    write_tiny(spec, source)
    spec = _with_checksums(spec, source)
    members = {f"gzip/{p.name}": p.read_bytes() for p in source.iterdir()}
    members[f"gzip/{spec.filename('test', 'labels')}"] = b"tampered"
    server.files["/emnist/gzip.zip"] = _zip(members)
    with pytest.raises(DataError, match="does not match its official sha256"):
        dl.download(spec, tmp_path / "cache" / "emnist", mirror=server.url, progress=False)
    assert not (tmp_path / "cache" / "emnist" / spec.filename("train", "images")).exists()


def test_mnist_file_download_through_mirror_env(server, tmp_path, monkeypatch):
    source = tmp_path / "release"
    spec = get_dataset("mnist")
    write_tiny(spec, source, counts={"train": 30, "test": 10})
    spec = _with_checksums(spec, source)
    server.files.update({f"/mnist/{p.name}": p.read_bytes() for p in source.iterdir()})
    monkeypatch.setenv("EDGE_EMNIST_MIRROR", server.url)
    data = load_dataset(spec, cache_dir=tmp_path / "cache", progress=False)
    assert data.provenance.official and len(data.train) == 30
    assert sorted(p for p, _ in server.requests) == sorted(f"/mnist/{n}" for n in spec.filenames())


def test_a_download_that_is_not_a_zip_is_not_kept(server, tmp_path):
    """A proxy's HTML page saved as gzip.zip used to stay in the cache and fail every later run."""
    spec = get_dataset("emnist-balanced")
    server.files["/emnist/gzip.zip"] = b"<html>please log in</html>"
    with pytest.raises(DataError, match="is not a zip archive .* deleted"):
        dl.download(spec, tmp_path / "cache" / "emnist", mirror=server.url, progress=False)
    assert not (tmp_path / "cache" / "emnist" / "gzip.zip").exists()
    source = tmp_path / "release"
    write_tiny(spec, source)
    spec = _with_checksums(spec, source)
    server.files["/emnist/gzip.zip"] = _zip({f"gzip/{p.name}": p.read_bytes() for p in source.iterdir()})
    assert dl.download(spec, tmp_path / "cache" / "emnist", mirror=server.url, progress=False)  # next run works
