"""The handwriting demo: preprocessing (Python = JavaScript), the server's rules, and the page in Chromium."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_emnist.cli import main
from edge_emnist.demo import server as demo_server
from edge_emnist.demo.preprocess import preprocess
from tests.strokes import PAD, STROKES, render

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported" / "simple_cnn-emnist-bymerge-qat-int8.onnx"  # committed, with its card
PREPROCESS_JS = ROOT / "edge_emnist" / "demo" / "web" / "preprocess.mjs"
NEEDS_ORT_WEB = pytest.mark.skipif(not (demo_server.ORT_DIST / "ort.wasm.min.mjs").exists(),
                                   reason=f"onnxruntime-web not installed: {demo_server.BUILD_COMMAND}")


def labels_of(card: dict) -> list[str]:
    return [card["labels"][str(i)] for i in range(len(card["labels"]))]


# --- preprocessing ------------------------------------------------------------------------------------

def test_preprocess_centres_by_mass_in_a_20_pixel_box():
    image = preprocess(render(STROKES["H"]))
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.max() == pytest.approx(1.0) and image.min() >= 0
    rows, cols = np.nonzero(image > 0.05)
    assert rows.max() - rows.min() <= 22 and cols.max() - cols.min() <= 22  # 20 px box + the soft edge
    ys, xs = np.mgrid[0:28, 0:28]
    centre = (np.sum(ys * image) / image.sum(), np.sum(xs * image) / image.sum())
    assert np.allclose(centre, 13.5, atol=1.0)
    assert preprocess(np.zeros((50, 80))) is None
    assert np.array_equal(preprocess(render(STROKES["7"]), transpose=True), preprocess(render(STROKES["7"])).T)
    with pytest.raises(ValueError, match="2-D"):
        preprocess(np.zeros((2, 2, 3)))


def test_drawn_characters_are_read_by_the_exported_model():
    """The drawing-to-input steps give what the model was trained on: it reads clean strokes right."""
    card = json.loads(MODEL.with_name(MODEL.name + ".json").read_text())
    session = ort.InferenceSession(str(MODEL))
    name, labels = session.get_inputs()[0].name, labels_of(card)
    read = {char: labels[int(np.argmax(session.run(None, {name: preprocess(render(s))[None, ..., None]})[0]))]
            for char, s in STROKES.items()}
    assert read == {char: char for char in STROKES}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js not installed")
def test_javascript_preprocessing_matches_python(tmp_path):
    drawings = {char: render(s) for char, s in list(STROKES.items())[:4]}
    drawings["blank"] = np.zeros((PAD, PAD))
    drawings["wide"] = render([[(10, 120), (270, 130)]])  # a dash: the longer side is the width
    drawings["dot"] = render([[(100, 100), (101, 100)]])
    drawings["corner"] = render([[(0, 0), (40, 0)]])  # mass far from the centre: the shift is clamped
    payload = {k: (np.round(v * 255) / 255).ravel().tolist() for k, v in drawings.items()}
    (tmp_path / "in.json").write_text(json.dumps(payload))
    script = (f"import {{ preprocess }} from {json.dumps(PREPROCESS_JS.as_uri())};"
              "import { readFileSync } from 'node:fs';"
              f"const drawings = JSON.parse(readFileSync({json.dumps(str(tmp_path / 'in.json'))}, 'utf8'));"
              "const out = {};"
              f"for (const [k, v] of Object.entries(drawings)) {{ const r = preprocess(v, {PAD}, {PAD});"
              "  out[k] = r && Array.from(r); const t = preprocess(v, 280, 280, { transpose: true });"
              "  out[k + ':T'] = t && Array.from(t); }"
              "console.log(JSON.stringify(out));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    js = json.loads(done.stdout)
    for key, drawing in drawings.items():
        quantized = np.round(drawing * 255) / 255
        for suffix, transpose in (("", False), (":T", True)):
            python = preprocess(quantized, transpose=transpose)
            if python is None:
                assert js[key + suffix] is None
            else:
                assert np.abs(np.array(js[key + suffix]).reshape(28, 28) - python).max() < 1e-6, key + suffix


# --- server -------------------------------------------------------------------------------------------

@pytest.fixture
def exported(tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    for path in (MODEL, MODEL.with_name(MODEL.name + ".json")):
        shutil.copy(path, folder / path.name)
    (folder / "no-card.onnx").write_bytes(b"not listed")
    (tmp_path / "secret.txt").write_text("outside exported/")
    return folder


@pytest.fixture
def server(exported):
    httpd = demo_server.make_server(exported, port=0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


@NEEDS_ORT_WEB
def test_server_serves_page_runtime_and_listed_models(server):
    status, kind, page = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and b"app.mjs" in page
    status, kind, _ = request(server, "GET", "/vendor/ort/ort.wasm.min.mjs")
    assert status == 200 and kind == "text/javascript"
    status, kind, _ = request(server, "GET", "/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert status == 200 and kind == "application/wasm"
    status, _, listing = request(server, "GET", "/api/models")
    (model,) = json.loads(listing)
    assert model["name"] == MODEL.name and model["quantize"] == "int8" and len(model["labels"]) == 47
    assert model["class_groups"]["digits"] == list(range(10)) and len(model["class_groups"]["letters"]) == 37
    status, _, data = request(server, "GET", f"/models/{MODEL.name}")
    assert status == 200 and data == MODEL.read_bytes()


@NEEDS_ORT_WEB
@pytest.mark.parametrize("path, status, message", [
    ("/models/other.onnx", 404, "unknown model 'other.onnx'"),
    ("/models/no-card.onnx", 404, "unknown model"),
    ("/models/..%2Fsecret.txt", 403, "not a plain file name"),
    ("/models/%2E%2E%2Fsecret.txt", 403, "not a plain file name"),
    ("/static/../../secret.txt", 403, "not a plain file name"),
    ("/static/server.py", 404, "no such file"),
    ("/vendor/ort/package.json", 404, "no such file"),
    ("/etc/passwd", 404, "no such page"),
])
def test_server_refuses_what_it_does_not_serve(server, path, status, message):
    got, kind, body = request(server, "GET", path)
    assert got == status and kind == "application/json" and message in json.loads(body)["error"]


@NEEDS_ORT_WEB
def test_preprocess_endpoint_and_its_limits(server):
    ink = np.round(render(STROKES["E"]) * 255).astype(np.uint8)
    body = json.dumps({"width": PAD, "height": PAD, "ink": base64.b64encode(ink.tobytes()).decode()}).encode()
    status, _, data = request(server, "POST", "/api/preprocess", body, {"Content-Type": "application/json"})
    image = np.array(json.loads(data)["image"]).reshape(28, 28)
    assert status == 200 and np.abs(image - preprocess(ink / 255.0)).max() < 1e-6

    # Declared over the limit: refused from the header alone, before any body is read. (Sending the whole body
    # races the server's early close into a BrokenPipeError on a busy machine.)
    huge = demo_server.MAX_BODY_BYTES + 1
    status, _, data = request(server, "POST", "/api/preprocess", b"x", {"Content-Length": str(huge)})
    assert status == 413 and "limit" in json.loads(data)["error"]
    for bad in (b"not json", json.dumps({"width": 3, "height": 3, "ink": "AAAA"}).encode(),
                json.dumps({"width": 2, "height": 2}).encode()):
        status, _, data = request(server, "POST", "/api/preprocess", bad)
        assert status == 400 and json.loads(data)["error"]
    status, _, _ = request(server, "POST", "/api/other", b"{}")
    assert status == 404


@pytest.mark.parametrize("setup, message", [
    ("missing", "no exported models at"),
    ("empty", "has no .onnx model with a card"),
])
def test_demo_command_errors_are_one_line(tmp_path, capsys, monkeypatch, setup, message):
    monkeypatch.setattr(demo_server, "check_runtime_installed", lambda: None)
    folder = tmp_path / "exported"
    if setup == "empty":
        folder.mkdir()
    assert main(["demo", "--exported", str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_demo_without_onnxruntime_web_says_how_to_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo_server, "ORT_DIST", tmp_path / "nothing")
    assert main(["demo", "--port", "0"]) == 2
    assert "npm ci --prefix" in capsys.readouterr().err


# --- the page in a real browser -----------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium or chromedriver not installed (.ci/run installs Debian's chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,820",
                 "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def draw(driver, canvas, strokes) -> None:
    """Real pointer input: press, move in small steps along each segment, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    size = canvas.size
    scale_x, scale_y = size["width"] / PAD, size["height"] / PAD
    for stroke in strokes:
        actions = ActionChains(driver, duration=0)
        x, y = stroke[0]
        actions.move_to_element_with_offset(canvas, round(x * scale_x - size["width"] / 2),
                                            round(y * scale_y - size["height"] / 2)).click_and_hold()
        for (x0, y0), (x1, y1) in pairwise(stroke):
            steps = max(1, int(np.hypot(x1 - x0, y1 - y0) // 12))
            for i in range(1, steps + 1):
                nx, ny = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
                px, py = x0 + (x1 - x0) * (i - 1) / steps, y0 + (y1 - y0) * (i - 1) / steps
                actions.move_by_offset(round(nx * scale_x) - round(px * scale_x),
                                       round(ny * scale_y) - round(py * scale_y))
        actions.release().perform()


def wait_for(driver, script: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


@NEEDS_ORT_WEB
def test_page_reads_drawn_characters_in_chromium(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{server}/")
    wait_for(browser, "return window.edgeDemo && window.edgeDemo.ready")
    canvas = browser.find_element(By.ID, "pad")
    for char in ("7", "H", "X", "E", "A"):
        browser.find_element(By.ID, "clear").click()
        seq = browser.execute_script("return window.edgeDemo.seq")
        draw(browser, canvas, STROKES[char])
        last = wait_for(browser, f"const l = window.edgeDemo.last; return l && l.seq > {seq} && l.top5 "
                                 "&& l.pythonMaxDiff !== undefined && l.seq === window.edgeDemo.seq && l;")
        shown = browser.find_element(By.CSS_SELECTOR, "#top5 li .char").text
        assert shown == last["top5"][0]["label"] == char, f"drew {char}, the page read {shown}: {last['top5']}"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#top5 li")) == 5
        assert last["pythonMaxDiff"] < 1e-5  # the page's preprocessing = the Python one, same pixels
        assert "ms" in browser.find_element(By.ID, "timing").text and last["ms"] > 0

    # undo takes the last stroke away: E without its middle bar is read afresh
    seq = browser.execute_script("return window.edgeDemo.seq")
    browser.find_element(By.ID, "undo").click()
    wait_for(browser, f"return window.edgeDemo.seq > {seq} && window.edgeDemo.last.top5")
    assert browser.execute_script("return window.edgeDemo.strokes.length") == len(STROKES["E"]) - 1
    browser.find_element(By.ID, "clear").click()
    assert wait_for(browser, "return window.edgeDemo.last && window.edgeDemo.last.empty")
    assert browser.find_elements(By.CSS_SELECTOR, "#top5 li") == []

    # "digits only" answers among the card's digit classes: all five shown are digits, and 7 still reads 7
    from selenium.webdriver.support.select import Select

    Select(browser.find_element(By.ID, "group")).select_by_value("digits")
    seq = browser.execute_script("return window.edgeDemo.seq")
    draw(browser, canvas, STROKES["7"])
    last = wait_for(browser, f"const l = window.edgeDemo.last; return l && l.seq > {seq} && l.top5 && l;")
    assert last["group"] == "digits" and [t["label"] for t in last["top5"]][0] == "7"
    assert all(t["label"].isdigit() for t in last["top5"]), last["top5"]
    assert abs(sum(t["p"] for t in last["top5"]) - 1) < 0.5  # renormalised over the 10 digits
    Select(browser.find_element(By.ID, "group")).select_by_value("")
    browser.find_element(By.ID, "clear").click()

    if os.environ.get("EDGE_EMNIST_SCREENSHOT"):  # docs/demo.png is made this way
        draw(browser, canvas, STROKES["A"])
        wait_for(browser, "return window.edgeDemo.last && window.edgeDemo.last.pythonMaxDiff !== undefined")
        browser.save_screenshot(os.environ["EDGE_EMNIST_SCREENSHOT"])


@NEEDS_ORT_WEB
def test_one_malformed_card_or_outside_link_costs_only_that_model(exported, tmp_path, capsys):
    (exported / "broken.onnx").write_bytes(b"x")
    (exported / "broken.onnx.json").write_text("{not json")
    (tmp_path / "passwd").write_text("root:x:0:0")
    (exported / "leak.onnx").symlink_to(tmp_path / "passwd")
    (exported / "leak.onnx.json").symlink_to(exported / f"{MODEL.name}.json")
    httpd = demo_server.make_server(exported, port=0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        status, _, listing = request(port, "GET", "/api/models")
        assert status == 200 and [m["name"] for m in json.loads(listing)] == [MODEL.name]
        assert request(port, "GET", f"/models/{MODEL.name}")[0] == 200
        for name in ("broken.onnx", "leak.onnx"):
            status, _, body = request(port, "GET", f"/models/{name}")
            assert status == 404 and b"root:x" not in body
        err = capsys.readouterr().err
        assert "not offering broken.onnx: unreadable card" in err and "not offering leak.onnx" in err
    finally:
        httpd.shutdown()
        httpd.server_close()


@NEEDS_ORT_WEB
def test_server_refuses_other_host_names_and_sends_a_csp(server):
    status, _, body = request(server, "GET", "/api/models", headers={"Host": "attacker.example:80"})
    assert status == 403 and "unexpected Host header" in json.loads(body)["error"]
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    connection.request("GET", "/", headers={"Host": f"localhost:{server}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 200 and "default-src 'self'" in response.getheader("Content-Security-Policy")


@NEEDS_ORT_WEB
def test_absurd_numbers_and_slow_clients_are_answered(server, monkeypatch):
    body = b'{"width": 1e400, "height": 1, "ink": ""}'
    status, _, data = request(server, "POST", "/api/preprocess", body, {"Content-Type": "application/json"})
    assert status == 400 and json.loads(data)["error"]
    import socket

    slow = socket.create_connection(("127.0.0.1", server), timeout=30)
    slow.sendall(b"GET / HTTP/1.1\r\n")  # and then nothing more: the server hangs up after its timeout
    started = time.perf_counter()
    assert slow.recv(1024) == b""  # closed, not held
    assert time.perf_counter() - started <= demo_server.DemoHandler.timeout + 5
    slow.close()
