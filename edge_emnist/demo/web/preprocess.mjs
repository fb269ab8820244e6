// A drawing -> the 28x28 image the models were trained on. The JavaScript twin of
// edge_emnist/demo/preprocess.py: same steps, same float64 arithmetic, same rounding (floor(x + 0.5)),
// so a test can run both on one input and compare them number for number.

export const FIELD = 28;
export const BOX = 20;
export const INK_THRESHOLD = 0.05;

const round = (x) => Math.floor(x + 0.5);

// target x source: how much of each source pixel falls into each target pixel, rows summing to 1.
export function areaWeights(source, target) {
  const weights = [];
  const step = source / target;
  for (let t = 0; t < target; t++) {
    const row = new Float64Array(source);
    const start = t * step, end = (t + 1) * step;
    for (let s = Math.floor(start); s < Math.min(source, Math.ceil(end)); s++) {
      row[s] = (Math.min(end, s + 1) - Math.max(start, s)) / step;
    }
    weights.push(row);
  }
  return weights;
}

function blur121(field) {
  const n = FIELD, at = (img, y, x) => (y < 0 || x < 0 || y >= n || x >= n ? 0 : img[y * n + x]);
  const rows = new Float64Array(n * n), out = new Float64Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++)
    rows[y * n + x] = 0.25 * at(field, y - 1, x) + 0.5 * at(field, y, x) + 0.25 * at(field, y + 1, x);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++)
    out[y * n + x] = 0.25 * at(rows, y, x - 1) + 0.5 * at(rows, y, x) + 0.25 * at(rows, y, x + 1);
  return out;
}

// ink: row-major array of height x width values, 0 (paper) to 1 (ink). Returns a Float32Array of 28 x 28
// in [0, 1] (upright; transpose: true gives the EMNIST raw-file orientation), or null for a blank drawing.
export function preprocess(ink, width, height, { transpose = false } = {}) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (ink[y * width + x] > INK_THRESHOLD) {
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      if (x < left) left = x;
      if (x > right) right = x;
    }
  }
  if (bottom < 0) return null;
  const h = bottom - top + 1, w = right - left + 1;
  const scale = BOX / Math.max(h, w);
  const outH = Math.max(1, round(h * scale)), outW = Math.max(1, round(w * scale));
  const wy = areaWeights(h, outH), wx = areaWeights(w, outW);

  // small = wy @ crop @ wx^T, in the same order as numpy: first (crop @ wx^T), then wy @ that
  const cols = new Float64Array(h * outW);
  for (let y = 0; y < h; y++) for (let j = 0; j < outW; j++) {
    let sum = 0;
    for (let x = 0; x < w; x++) sum += ink[(top + y) * width + left + x] * wx[j][x];
    cols[y * outW + j] = sum;
  }
  const small = new Float64Array(outH * outW);
  for (let i = 0; i < outH; i++) for (let j = 0; j < outW; j++) {
    let sum = 0;
    for (let y = 0; y < h; y++) sum += wy[i][y] * cols[y * outW + j];
    small[i * outW + j] = sum;
  }

  let total = 0, massY = 0, massX = 0;
  for (let i = 0; i < outH; i++) for (let j = 0; j < outW; j++) {
    const v = small[i * outW + j];
    total += v; massY += v * i; massX += v * j;
  }
  massY /= total; massX /= total;
  const centre = (FIELD - 1) / 2;
  const y0 = Math.min(Math.max(round(centre - massY), 0), FIELD - outH);
  const x0 = Math.min(Math.max(round(centre - massX), 0), FIELD - outW);
  let field = new Float64Array(FIELD * FIELD);
  for (let i = 0; i < outH; i++) for (let j = 0; j < outW; j++) field[(y0 + i) * FIELD + x0 + j] = small[i * outW + j];
  field = blur121(field);
  let max = 0;
  for (const v of field) if (v > max) max = v;
  const out = new Float32Array(FIELD * FIELD);
  for (let y = 0; y < FIELD; y++) for (let x = 0; x < FIELD; x++) {
    const v = Math.min(1, Math.max(0, field[y * FIELD + x] / max));
    out[transpose ? x * FIELD + y : y * FIELD + x] = v;
  }
  return out;
}
