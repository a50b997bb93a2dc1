// Uncertainty: a 1-D slice of a regression model with its epistemic and total bands, and a
// classifier's probabilities, entropy and mutual information for a drawn or uploaded digit.

import { api, debounce, el, fillSelect, guarded, models, offered, pngSrc, served } from "./api.js";
import { Pad } from "./draw.js";
import { band, format, frame, legend, line, svg } from "./plot.js";

const $ = (id) => document.getElementById(id);
const POINTS = 41;
const BEYOND = 0.25; // the slice runs this share of the data's range past each end
let regressors = [];
let classifiers = [];
let autoencoders = [];
let pad;
let sliced = 0; // the latest slice request

export async function start() {
  const ready = await guarded($("reg-problem"), async () => {
    const all = await models();
    const predictive = all.filter((m) => m.kind === "predictive");
    const task = (name) => predictive.filter((m) => served(m).signature.task === name);
    regressors = flagshipFirst(offered(task("regression"), $("reg-unserved")));
    classifiers = flagshipFirst(offered(task("classification"), $("cls-unserved")));
    fillSelect($("reg-model"), regressors.map((m) => [m.name, m.name]));
    fillSelect($("cls-model"), classifiers.map((m) => [m.name, m.name]));
    autoencoders = offered(all.filter((m) => m.kind === "autoencoder"), $("ae-unserved"));
    fillSelect($("ae-model"), autoencoders.map((m) => [m.name, m.name]));
    return true;
  });
  if (!ready) return;
  $("reg-model").addEventListener("change", () => { baseInputs(); slice(); });
  $("reg-feature").addEventListener("change", slice);
  $("reg-level").addEventListener("change", slice);
  pad = new Pad($("digit-pad"), { brush: () => 22, onStroke: classifyPad });
  $("digit-clear").addEventListener("click", () => {
    pad.clear();
    $("cls-result").replaceChildren();
    $("ae-result").replaceChildren();
    preview(null);
  });
  $("digit-noise").addEventListener("click", noise);
  $("digit-upload").addEventListener("change", (e) => upload(e.target));
  $("cls-model").addEventListener("change", () => last && classify(last));
  $("ae-model").addEventListener("change", () => last && reconstruct(last));
  if (regressors.length) {
    baseInputs();
    await slice();
  }
}

/** SGHMC models first: the full posterior is what this tab is about. */
function flagshipFirst(list) {
  const rank = (m) => (served(m).signature.method === "sghmc" ? 0 : 1);
  return [...list].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

// -- regression ---------------------------------------------------------------------------

function regressor() {
  return served(regressors.find((m) => m.name === $("reg-model").value));
}

function summaryOf(version) {
  return version.card?.data?.feature_summary || {};
}

function baseInputs() {
  const version = regressor();
  const features = version.signature.features;
  const summary = summaryOf(version);
  fillSelect($("reg-feature"), features.map((f) => [f, f.replaceAll("_", " ")]));
  const later = debounce(slice, 250);
  $("reg-base").replaceChildren(...features.map((f) => {
    const s = summary[f];
    const input = el("input", { type: "number", step: "any", "data-feature": f });
    input.value = String(s ? s.median : 0);
    input.addEventListener("input", later);
    const hint = s ? ` (${format(s.min)}–${format(s.max)})` : "";
    return el("label", {}, `${f.replaceAll("_", " ")}${hint}`, input);
  }));
}

function around(v) {
  const r = Math.max(1, Math.abs(v));
  return { min: v - r, max: v + r, median: v, guessed: true };
}

function baseRow() {
  return [...$("reg-base").querySelectorAll("input")].map((input) => Number(input.value));
}

async function slice() {
  const mine = ++sliced;
  const version = regressor();
  const features = version.signature.features;
  const feature = $("reg-feature").value;
  const index = features.indexOf(feature);
  const base = baseRow();
  // without the card's summary (cards older than it), slice around the base value
  const s = summaryOf(version)[feature] || around(base[index]);
  const span = s.max - s.min || 1;
  const lo = s.min - BEYOND * span;
  const xs = Array.from({ length: POINTS }, (_, i) => lo + ((1 + 2 * BEYOND) * span * i) / (POINTS - 1));
  const inputs = xs.map((x) => base.map((v, j) => (j === index ? x : v)));
  const level = Number($("reg-level").value);
  const model = $("reg-model").value;
  const answer = await guarded($("reg-problem"), () =>
    api(`/v1/models/${model}/predict`, { method: "POST", body: { inputs, interval: level } }),
  );
  if (mine !== sliced || !answer) return;
  drawSlice(answer, xs, s, feature, base[index], version);
}

function drawSlice(answer, xs, s, feature, at, version) {
  const p = answer.predictions;
  const key = Object.keys(p[0].interval)[0];
  const mean = p.map((r) => r.mean);
  const total = [p.map((r) => r.interval[key][0]), p.map((r) => r.interval[key][1])];
  const epi = [p.map((r) => r.credible_interval_mean[key][0]), p.map((r) => r.credible_interval_mean[key][1])];
  const ylo = Math.min(...total[0]);
  const yhi = Math.max(...total[1]);
  const margin = 0.05 * (yhi - ylo || 1);
  const units = version.signature.target_units ? ` (${version.signature.target_units})` : "";
  const target = `${(version.signature.targets || ["prediction"])[0].replaceAll("_", " ")}${units}`;
  const chart = frame({ x: [xs[0], xs[xs.length - 1]], y: [ylo - margin, yhi + margin], xlabel: feature.replaceAll("_", " "), ylabel: target });
  const { root, sx, sy, area } = chart;
  const outside = svg("g", { class: "outside-data" });
  if (s.guessed) outside.setAttribute("display", "none");
  outside.append(svg("rect", { class: "outside", x: area.l, y: area.t, width: sx(s.min) - area.l, height: area.b - area.t }));
  outside.append(svg("rect", { class: "outside", x: sx(s.max), y: area.t, width: area.r - sx(s.max), height: area.b - area.t }));
  outside.append(svg("text", { x: area.l + 4, y: area.b - 6 }, "beyond the data"));
  root.insertBefore(outside, root.firstChild);
  root.append(band(xs, total[0], total[1], sx, sy, "total"));
  root.append(band(xs, epi[0], epi[1], sx, sy, "epistemic"));
  root.append(line(xs, mean, sx, sy, "mean"));
  root.append(svg("line", { class: "diag", x1: sx(at), x2: sx(at), y1: area.t, y2: area.b }));
  legend(root, [["total", `${key} predictive interval (total)`], ["epistemic", `${key} interval of the mean (epistemic)`], ["mean", "mean"]], area.l + 8, area.t + 4);
  $("reg-plot").replaceChildren(root);
  const width = (i) => epi[1][i] - epi[0][i];
  const middle = xs.reduce((best, x, i) => (Math.abs(x - at) < Math.abs(xs[best] - at) ? i : best), 0);
  const ends = Math.max(width(0), width(xs.length - 1));
  $("reg-caption").textContent =
    `${answer.model} v${answer.version}, ${answer.draws} posterior draws (${answer.method}). ` +
    `At ${feature.replaceAll("_", " ")} = ${format(at)}: mean ${format(mean[middle])}, epistemic std ${format(p[middle].epistemic_std)}, ` +
    `aleatoric std ${format(p[middle].aleatoric_std)}; the epistemic band is ${format(ends / (width(middle) || 1))}× as wide at the slice's far end.` +
    (s.guessed ? " This card has no feature summary, so the slice spans the base value ± its size." : "");
}

// -- classification -----------------------------------------------------------------------

let last = null; // the last 8x8 input, to re-ask another model

/** The pad's ink, cropped to its box, its longer side scaled to fill a 32x32 square (centred),
 * then 4x4 block means: 8x8 levels 0–16, the layout of scikit-learn's digits (32x32 bitmaps
 * the digit fills, counted in 4x4 blocks). */
function pixels8(source) {
  const { width, height } = source;
  const data = source.getContext("2d").getImageData(0, 0, width, height).data;
  let [top, left, bottom, right] = [height, width, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4] < 200) { // ink: about level 4 of 16 and darker
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0) return null;
  const w = right - left + 1;
  const h = bottom - top + 1;
  const fit = 32 / Math.max(w, h);
  const square = document.createElement("canvas");
  square.width = square.height = 32;
  const ctx = square.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, 32, 32);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, left, top, w, h, 16 - (w * fit) / 2, 16 - (h * fit) / 2, w * fit, h * fit);
  const small = ctx.getImageData(0, 0, 32, 32).data;
  const out = [];
  for (let by = 0; by < 8; by++) {
    for (let bx = 0; bx < 8; bx++) {
      let ink = 0;
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 4; x++) ink += 1 - small[((by * 4 + y) * 32 + bx * 4 + x) * 4] / 255;
      }
      out.push(Math.round((ink / 16) * 16));
    }
  }
  return out;
}

function preview(levels) {
  const ctx = $("digit-preview").getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, 64, 64);
  if (!levels) return;
  levels.forEach((v, i) => {
    const g = Math.round(255 * (1 - v / 16));
    ctx.fillStyle = `rgb(${g},${g},${g})`;
    ctx.fillRect((i % 8) * 8, Math.floor(i / 8) * 8, 8, 8);
  });
}

function classifyPad() {
  const levels = pixels8(pad.canvas);
  if (levels) classify(levels);
}

function noise() {
  pad.clear();
  classify(Array.from({ length: 64 }, () => Math.floor(Math.random() * 17)));
}

async function upload(input) {
  const file = input.files[0];
  input.value = "";
  if (!file) return;
  await guarded($("cls-problem"), async () => {
    const image = await createImageBitmap(file).catch(() => {
      throw new Error(`${file.name} is not an image this browser can read`);
    });
    pad.clear();
    const c = pad.canvas;
    const fit = Math.min(c.width / image.width, c.height / image.height);
    pad.ctx.drawImage(image, (c.width - image.width * fit) / 2, (c.height - image.height * fit) / 2, image.width * fit, image.height * fit);
    const pixels = pad.ctx.getImageData(0, 0, c.width, c.height);
    let sum = 0;
    for (let i = 0; i < pixels.data.length; i += 4) sum += pixels.data[i];
    if (sum / (pixels.data.length / 4) < 128) { // light ink on dark paper: turn it round
      for (let i = 0; i < pixels.data.length; i += 4) {
        pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = 255 - pixels.data[i];
      }
      pad.ctx.putImageData(pixels, 0, 0);
    }
    classifyPad();
  });
}

async function classify(levels) {
  last = levels;
  preview(levels);
  reconstruct(levels);
  const model = $("cls-model").value;
  const answer = await guarded($("cls-problem"), () =>
    api(`/v1/models/${model}/predict`, { method: "POST", body: { inputs: [levels] } }),
  );
  if (!answer || levels !== last) return;
  const p = answer.predictions[0];
  const classes = served(classifiers.find((m) => m.name === model)).signature.classes || p.probs.map((_, i) => String(i));
  const bars = el("div", { class: "probs", "aria-label": "class probabilities" });
  p.probs.forEach((prob, i) => {
    const fill = el("div", { class: `fill${i === p.label ? " top" : ""}` });
    fill.style.width = `${(prob * 100).toFixed(1)}%`;
    bars.append(el("span", { text: classes[i] }), el("div", {}, fill), el("span", { text: prob.toFixed(3) }));
  });
  const facts = el("dl", { class: "facts", id: "cls-facts" });
  const rows = [
    ["predicted", `${p.class} (p = ${p.max_prob.toFixed(3)})`],
    ["entropy (total)", `${p.entropy.toFixed(3)} nats`],
    ["expected entropy (aleatoric)", `${p.expected_entropy.toFixed(3)} nats`],
    ["mutual information (epistemic)", `${p.mutual_information.toFixed(3)} nats`],
    ["draws that disagree with the vote", `${(p.variation_ratio * 100).toFixed(0)}%`],
    ["posterior draws", `${answer.draws} (${answer.method})`],
  ];
  for (const [term, value] of rows) facts.append(el("dt", { text: term }), el("dd", { text: value }));
  $("cls-result").replaceChildren(bars, facts);
}

// -- autoencoder --------------------------------------------------------------------------

/** The same 8x8 levels through a Bayesian autoencoder: its reconstruction and the heatmaps of
 * the epistemic and aleatoric std the api draws (white = the largest std a level can have). */
async function reconstruct(levels) {
  if (!autoencoders.length) return;
  const model = $("ae-model").value;
  const answer = await guarded($("ae-problem"), () =>
    api(`/v1/models/${model}/reconstruct`, { method: "POST", body: { inputs: [levels], heatmaps: true } }),
  );
  if (!answer || levels !== last) return;
  const r = answer.reconstructions[0];
  const picture = (key, caption) =>
    el("figure", { class: "heat" }, el("img", { src: pngSrc(r.heatmaps[key]), alt: caption, "data-heatmap": key }), el("figcaption", { text: caption }));
  const pictures = el("div", { class: "heats" },
    picture("reconstruction", "reconstruction"),
    picture("epistemic_std", "epistemic std"),
    picture("aleatoric_std", "aleatoric std"));
  const facts = el("dl", { class: "facts", id: "ae-facts" });
  const rows = [
    ["anomaly score (−log p(x))", `${r.anomaly_score.toFixed(1)} nats`],
    ["mean epistemic std", `${r.mean_epistemic_std.toFixed(2)} levels`],
    ["mean aleatoric std", `${r.mean_aleatoric_std.toFixed(2)} levels`],
    ["posterior draws", `${answer.draws} (${answer.method})`],
  ];
  for (const [term, value] of rows) facts.append(el("dt", { text: term }), el("dd", { text: value }));
  $("ae-result").replaceChildren(pictures, facts);
}
