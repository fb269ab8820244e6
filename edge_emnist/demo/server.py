"""The demo's HTTP server: the page, onnxruntime-web from the local npm install, and the exported models.

Inference happens in the browser; the server only hands out files and, for checking, runs the Python
preprocessing on a drawing the page sends (the page shows how far its own result is from Python's).
It serves nothing it was not told about: the page's own files by name, onnxruntime-web's dist folder,
and the .onnx artifacts of the exported folder whose model card names their sha256 and matches them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import mimetypes
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from edge_emnist.demo.preprocess import preprocess
from edge_emnist.device.cards import card_mismatch, card_path
from edge_emnist.device.classes import class_groups
from edge_emnist.device.files import sha256_file
from edge_emnist.device.runtimes import model_io
from edge_emnist.errors import EdgeEmnistError

WEB = Path(__file__).with_name("web")
PAGE_FILES = {"index.html", "app.mjs", "preprocess.mjs", "style.css"}
ORT_DIST = WEB / "node_modules" / "onnxruntime-web" / "dist"
ORT_FILES = {"ort.wasm.min.mjs", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs"}
MAX_BODY_BYTES = 1 << 20  # a 280 x 280 drawing is ~100 KB as base64
MAX_DRAWING_PIXELS = 1024 * 1024
BUILD_COMMAND = f"npm ci --prefix {WEB}"
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def check_runtime_installed() -> None:
    missing = [name for name in sorted(ORT_FILES) if not (ORT_DIST / name).exists()]
    if missing:
        raise EdgeEmnistError(f"onnxruntime-web is not installed ({missing[0]} missing): run `{BUILD_COMMAND}` "
                              "(Node.js and npm, once; afterwards the demo works offline)")


_reported: set[str] = set()


def _skip(path: Path, reason: str) -> None:
    """Say once (per file and reason) why a model is not offered; the others are still served."""
    line = f"demo: not offering {path.name}: {reason}"
    if line not in _reported:
        _reported.add(line)
        print(line, file=sys.stderr)


def inside(path: Path, folder: Path) -> bool:
    """True when `path`, links resolved, is a file inside `folder` (a symlink out of it is refused)."""
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve()) and path.resolve().is_file()
    except OSError:
        return False


@functools.lru_cache(maxsize=256)  # keyed by the file's mtime and size too: a replaced file is checked again
def _card_problem_cached(path: Path, sha256: str | None, labels: int, card_input: str, card_output: str,
                         mtime_ns: int, size: int) -> str | None:
    if not sha256:
        return "its card names no sha256 (not a card export wrote)"
    if sha256 != sha256_file(path):
        return "its card describes another file (sha256 differs)"
    try:
        io = model_io(path)
    except Exception as error:  # not an ONNX model at all (a text file named .onnx)
        return f"not a model ONNX Runtime can open ({type(error).__name__})"
    card = {"labels": dict.fromkeys(range(labels)), "input": json.loads(card_input), "output": json.loads(card_output)}
    return card_mismatch(card, io)


def _card_problem(path: Path, card: dict, mtime_ns: int, size: int) -> str | None:
    """Why a model must not be offered: a card without the file's sha256, for another file, or contradicting it."""
    return _card_problem_cached(path, card.get("sha256"), len(card["labels"]), json.dumps(card.get("input") or {}),
                                json.dumps(card.get("output") or {}), mtime_ns, size)


def list_models(exported: Path) -> list[dict]:
    """The .onnx artifacts with a readable model card, int8 first: what the page's picker offers. A malformed
    card, a card for another file, or a link out of the folder costs only that model (with a logged reason)."""
    models = []
    for path in sorted(exported.glob("*.onnx")):
        card_file = card_path(path)
        if not card_file.exists():
            continue
        if not (inside(path, exported) and inside(card_file, exported)):
            _skip(path, f"it or its card lies outside {exported}")
            continue
        try:
            card = json.loads(card_file.read_text())
            wrong = _card_problem(path, card, path.stat().st_mtime_ns, path.stat().st_size)
            if wrong:
                _skip(path, wrong)
                continue
            models.append({
                "name": path.name, "arch": card.get("arch"), "dataset": card.get("dataset"),
                "quantize": card.get("quantize"), "size_bytes": path.stat().st_size,
                "accuracy": float((card.get("accuracy") or {}).get("artifact") or 0) or None,
                "labels": dict(card["labels"]), "input": dict(card["input"]), "output": card.get("output"),
                "class_groups": class_groups(card["labels"]),  # from the labels: older cards lack the section
            })
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            _skip(path, f"unreadable card ({type(error).__name__}: {error})")
    models.sort(key=lambda m: (m["quantize"] != "int8", -(m["accuracy"] or 0)))
    return models


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "edge-emnist-demo"
    exported: Path = Path("exported")
    quiet = False
    allowed_hosts: frozenset[str] | None = None  # Host header values accepted (None: any, for --host 0.0.0.0)
    timeout = 10  # seconds a client may take to send its request: a slow one never holds a thread for good

    # --- responses -------------------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json({"error": message}, status)

    def _file(self, path: Path) -> None:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, path.read_bytes(), content_type)

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    # --- routes ----------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def _host_allowed(self) -> bool:
        """DNS rebinding: a page on another site that resolves its own name to 127.0.0.1 sends its own Host."""
        if self.allowed_hosts is None or self.headers.get("Host", "").lower() in self.allowed_hosts:
            return True
        self._error(HTTPStatus.FORBIDDEN, f"unexpected Host header {self.headers.get('Host')!r}: open the demo "
                                          "at the address it printed")
        return False

    def _same_origin(self) -> bool:
        """A page on another site may POST here (a 'simple' request needs no preflight): refuse any request its
        browser says comes from elsewhere, by Origin or by Sec-Fetch-Site."""
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "").lower()
        cross = self.headers.get("Sec-Fetch-Site", "").lower() == "cross-site"
        if origin is not None:
            netloc = urlsplit(origin).netloc.lower()
            cross = cross or not netloc or netloc != host or (self.allowed_hosts is not None
                                                              and netloc not in self.allowed_hosts)
        if cross:
            self._error(HTTPStatus.FORBIDDEN, f"cross-site request from {origin or 'another site'} refused")
        return not cross

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            return self._file(WEB / "index.html")
        if path == "/api/models":
            return self._json(list_models(self.exported))
        for prefix, folder, allowed in (("/static/", WEB, PAGE_FILES), ("/vendor/ort/", ORT_DIST, ORT_FILES),
                                        ("/models/", self.exported, None)):
            if path.startswith(prefix):
                return self._named_file(path[len(prefix):], folder, allowed)
        self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _named_file(self, name: str, folder: Path, allowed: set[str] | None) -> None:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            return self._error(HTTPStatus.FORBIDDEN, f"{name!r} is not a plain file name: only files of the "
                                                     "served folders by name")
        if allowed is None:  # models: only what /api/models lists
            allowed = {m["name"] for m in list_models(self.exported)}
            if name not in allowed:
                return self._error(HTTPStatus.NOT_FOUND, f"unknown model {name!r}: see /api/models")
        elif name not in allowed:
            return self._error(HTTPStatus.NOT_FOUND, f"no such file: {name}")
        target = folder / name
        if not target.is_file():
            return self._error(HTTPStatus.NOT_FOUND, f"{name} is missing on the server")
        if not inside(target, folder):
            return self._error(HTTPStatus.FORBIDDEN, f"{name} links outside the served folder")
        self._file(target)

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        path = urlsplit(self.path).path
        if path != "/api/preprocess":
            return self._error(HTTPStatus.NOT_FOUND, f"nothing to POST at {path}")
        if not self._same_origin():
            return
        length = (self.headers.get("Content-Length") or "").strip()
        if not re.fullmatch(r"[0-9]{1,12}", length):  # ASCII digits only: int() takes '²' and 5000-digit numbers
            self.close_connection = True
            return self._error(HTTPStatus.LENGTH_REQUIRED if not length else HTTPStatus.BAD_REQUEST,
                               "send a Content-Length of decimal digits")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # do not read an oversized body
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"body of {int(length):,} bytes is over the {MAX_BODY_BYTES:,}-byte limit")
        try:
            request = json.loads(self.rfile.read(int(length)))
            width, height = int(request["width"]), int(request["height"])
            ink = np.frombuffer(base64.b64decode(request["ink"], validate=True), dtype=np.uint8)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError, binascii.Error):
            return self._error(HTTPStatus.BAD_REQUEST, 'want JSON {"width": W, "height": H, "ink": base64 of '
                                                       "W*H bytes, 0 paper to 255 ink}")
        if not (0 < width and 0 < height and width * height <= MAX_DRAWING_PIXELS and ink.size == width * height):
            return self._error(HTTPStatus.BAD_REQUEST, f"ink has {ink.size} bytes for a {width} x {height} drawing")
        image = preprocess(ink.reshape(height, width).astype(np.float64) / 255.0,
                           transpose=bool(request.get("transpose", False)))
        self._json({"image": None if image is None else image.ravel().tolist()})


class DemoServer(ThreadingHTTPServer):
    """A thread per request, and a listen backlog for a classroom of browsers at once (the default 5 dropped up
    to 35 of 300 concurrent clients)."""

    request_queue_size = 512
    daemon_threads = True


def make_server(exported: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0: any free one), serving the models of `exported`."""
    check_runtime_installed()
    if not exported.is_dir():
        raise EdgeEmnistError(f"no exported models at {exported}: run `edge-emnist export RUN --quantize int8`")
    if not list_models(exported):
        raise EdgeEmnistError(f"{exported} has no .onnx model with a card: export one with "
                              "`edge-emnist export RUN --quantize int8 --format onnx`")
    handler = type("Handler", (DemoHandler,), {"exported": exported.resolve(), "quiet": quiet})
    try:
        server = DemoServer((host, port), handler)
    except OSError as error:
        raise EdgeEmnistError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    if host not in ("0.0.0.0", "::", ""):  # bound to one address: only its own names may be asked for
        bound = server.server_address[1]
        names = {host, *LOOPBACK_NAMES} if host in ("127.0.0.1", "localhost", "::1") else {host}
        handler.allowed_hosts = frozenset(f"{name}:{bound}".lower() for name in names) | frozenset(
            name.lower() for name in names if bound == 80)
    return server


def build_web() -> None:
    """`demo --build`: onnxruntime-web from npm at the pinned version, once (afterwards the demo works offline)."""
    import subprocess

    print(f"installing onnxruntime-web: {BUILD_COMMAND}")
    try:
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(WEB)])
    except FileNotFoundError:
        raise EdgeEmnistError("npm not found: install Node.js (with npm) to build the demo") from None
    if done.returncode != 0:
        raise EdgeEmnistError(f"`{BUILD_COMMAND}` failed (exit {done.returncode})")


def serve(exported: Path, host: str, port: int, open_browser: bool = False) -> None:
    """Serve until Ctrl-C, saying where."""
    server = make_server(exported, host, port)
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{'localhost' if bound_host in ('127.0.0.1', '::1') else bound_host}:{bound_port}/"
    print(f"edge-emnist demo: open {url}  (models from {exported}; Ctrl-C stops)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
