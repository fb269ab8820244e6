// The demo page: a drawing pad, the model picker, and inference in the browser with onnxruntime-web.
import * as ort from "/vendor/ort/ort.wasm.min.mjs";
import { preprocess, FIELD } from "/static/preprocess.mjs";

ort.env.wasm.wasmPaths = "/vendor/ort/"; // served by edge-emnist itself: no CDN, works offline
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation; one is plenty for a 28x28 image

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const $ = (id) => document.getElementById(id);
const LINE_WIDTH = 22; // about what a finger or a pen makes on a 280 px pad; preprocessing rescales anyway

const state = { strokes: [], current: null, models: [], model: null, session: null, seq: 0, last: null };
window.edgeDemo = state; // for the end-to-end test and for curious developers

function redraw() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = ctx.fillStyle = "#fff";
  ctx.lineWidth = LINE_WIDTH;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const stroke of state.strokes) {
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0][0], stroke[0][1], LINE_WIDTH / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(...stroke[0]);
    for (const point of stroke.slice(1)) ctx.lineTo(...point);
    ctx.stroke();
  }
}

function pointFrom(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  state.current = [pointFrom(event)];
  state.strokes.push(state.current);
  redraw();
});
pad.addEventListener("pointermove", (event) => {
  if (!state.current) return;
  state.current.push(pointFrom(event));
  redraw();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!state.current) return;
    state.current = null;
    classify();
  });
}
$("clear").addEventListener("click", () => { state.strokes = []; redraw(); classify(); });
$("undo").addEventListener("click", () => { state.strokes.pop(); redraw(); classify(); });
$("model").addEventListener("change", async (event) => { await loadModel(event.target.value); classify(); });
$("group").addEventListener("change", () => classify());

// "Digits only" and the like: the argmax over the group's outputs (the card's class_groups), renormalised,
// exactly what an app does to restrict a model without retraining it (docs/embedding.md).
function restrictTo(probabilities) {
  const members = state.model?.class_groups?.[$("group").value];
  if (!members) return probabilities.map((p, index) => ({ p, index }));
  const total = members.reduce((sum, i) => sum + probabilities[i], 0) || 1;
  return members.map((index) => ({ p: probabilities[index] / total, index }));
}

function showGroups() {
  const chosen = $("group").value;
  const groups = Object.keys(state.model?.class_groups ?? {});
  $("group").replaceChildren(new Option("any character", ""),
                             ...groups.map((g) => new Option(`${g} only`, g)));
  $("group").value = groups.includes(chosen) ? chosen : "";
}

function inkOfPad() {
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  const ink = new Float64Array(pad.width * pad.height);
  for (let i = 0; i < ink.length; i++) ink[i] = data[4 * i] / 255; // white ink (red channel) on black
  return ink;
}

function showSeen(image) {
  const pixels = seen.createImageData(FIELD, FIELD);
  for (let i = 0; i < FIELD * FIELD; i++) {
    const v = image ? Math.round(255 * image[i]) : 0;
    pixels.data.set([v, v, v, 255], 4 * i);
  }
  const tmp = new OffscreenCanvas(FIELD, FIELD);
  tmp.getContext("2d").putImageData(pixels, 0, 0);
  seen.imageSmoothingEnabled = false;
  seen.drawImage(tmp, 0, 0, seen.canvas.width, seen.canvas.height);
}

function showTop5(top5) {
  $("top5").replaceChildren(...top5.map(({ label, p }) => {
    const item = document.createElement("li");
    item.innerHTML = `<span class="char"></span><span class="bar"></span><span class="p"></span>`;
    item.querySelector(".char").textContent = label;
    item.querySelector(".bar").style.width = `${Math.max(1, 100 * p)}%`;
    item.querySelector(".p").textContent = `${(100 * p).toFixed(1)}%`;
    return item;
  }));
}

async function checkAgainstPython(ink, image, seq) {
  // The page's preprocessing next to the Python one on the same pixels (edge_emnist/demo/preprocess.py).
  const bytes = new Uint8Array(ink.length);
  for (let i = 0; i < ink.length; i++) bytes[i] = Math.round(255 * ink[i]);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  const response = await fetch("/api/preprocess", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ width: pad.width, height: pad.height, ink: btoa(binary), transpose: transposed() }),
  });
  const { image: python } = await response.json();
  if (seq !== state.seq || !python) return;
  let worst = 0;
  for (let i = 0; i < python.length; i++) worst = Math.max(worst, Math.abs(python[i] - image[i]));
  state.last.pythonInput = python;
  state.last.pythonMaxDiff = worst;
  $("check").textContent = `Python preprocessing of the same drawing differs by at most ${worst.toExponential(1)}.`;
}

function transposed() {
  return !String(state.model?.input?.orientation ?? "upright").startsWith("upright");
}

async function classify() {
  const seq = ++state.seq;
  const ink = inkOfPad();
  const image = preprocess(ink, pad.width, pad.height, { transpose: transposed() });
  showSeen(image);
  if (!image) {
    state.last = { seq, empty: true };
    $("top5").replaceChildren();
    $("timing").textContent = "Draw a character.";
    $("check").textContent = "";
    return;
  }
  if (!state.session) return;
  const shape = state.model.input.shape.map((d) => (d < 0 ? 1 : d));
  const feeds = { [state.session.inputNames[0]]: new ort.Tensor("float32", image, shape) };
  const started = performance.now();
  const output = await state.session.run(feeds);
  const ms = performance.now() - started;
  if (seq !== state.seq) return; // a newer stroke already asked
  const probabilities = Array.from(output[state.session.outputNames[0]].data);
  const top5 = restrictTo(probabilities).map(({ p, index }) => ({ label: state.model.labels[String(index)], p, index }))
    .sort((a, b) => b.p - a.p).slice(0, 5);
  showTop5(top5);
  $("timing").textContent = `Inference ${ms.toFixed(2)} ms in this browser (${state.model.name}).`;
  state.last = { seq, top5, ms, input: Array.from(image), model: state.model.name, group: $("group").value };
  checkAgainstPython(ink, image, seq).catch((error) => { $("check").textContent = `Python check failed: ${error}`; });
}

async function loadModel(name) {
  state.model = state.models.find((m) => m.name === name);
  state.session = null;
  showGroups();
  $("status").textContent = "";
  try {
    state.session = await ort.InferenceSession.create(`/models/${encodeURIComponent(name)}`,
                                                      { executionProviders: ["wasm"] });
  } catch (error) {
    $("status").textContent = `Could not load ${name}: ${error.message ?? error}`;
    return;
  }
  const m = state.model;
  const accuracy = m.accuracy == null ? "" : `, test accuracy ${(100 * m.accuracy).toFixed(2)}%`;
  $("model-info").textContent = `${m.arch} on ${m.dataset}, ${m.quantize}, ${(m.size_bytes / 1024).toFixed(0)} KiB${accuracy}`;
}

async function start() {
  redraw();
  try {
    state.models = await (await fetch("/api/models")).json();
  } catch (error) {
    $("status").textContent = `Could not list models: ${error}`;
    return;
  }
  $("model").replaceChildren(...state.models.map((m) => new Option(`${m.name}`, m.name)));
  const chosen = new URLSearchParams(location.search).get("model") ?? state.models[0]?.name;
  if (chosen) {
    $("model").value = chosen;
    await loadModel(chosen);
  }
  state.ready = Boolean(state.session);
  classify();
}

start();
