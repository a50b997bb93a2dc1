// Sample: a seeded grid that re-renders on every change, and an interpolation strip. An
// autoregressive model's grid is drawn row by row as its rows stream (Server-Sent Events).

import {
  api, canStream, debounce, el, fillSelect, guarded, models, offered, pngSrc, served, streamEvents,
} from "./api.js";

const $ = (id) => document.getElementById(id);
let samplers = [];
let drawn = 0; // the latest grid request; older answers are dropped

export async function start() {
  const box = $("sample-problem");
  const ready = await guarded(box, async () => {
    const registered = (await models()).filter(sampled).sort((a, b) => RANK[a.kind] - RANK[b.kind]);
    samplers = offered(registered, $("sample-unserved"));
    if (!samplers.length) throw new Error(`no sampler model is ${registered.length ? "served" : "registered"}`);
    fillSelect($("sample-model"), samplers.map((m) => [m.name, m.name]));
    return true;
  });
  if (!ready) return;
  const later = debounce(render, 120);
  $("sample-model").addEventListener("change", () => { labelsFor(); render(); });
  for (const id of ["sample-seed", "sample-n", "sample-label"]) $(id).addEventListener("change", render);
  $("sample-seed").addEventListener("input", later);
  $("sample-temp").addEventListener("input", () => {
    $("sample-temp-out").textContent = Number($("sample-temp").value).toFixed(1);
    later();
  });
  $("sample-reseed").addEventListener("click", () => {
    $("sample-seed").value = String(Math.floor(Math.random() * 1e6));
    render();
  });
  $("interp-go").addEventListener("click", interpolate);
  labelsFor();
  await render();
}

const RANK = { sampler: 0, autoregressive: 1, autoencoder: 2 }; // samplers first, by name within

/** The models /sample serves: samplers, autoregressive models, and autoencoders whose card
 * has a decode graph (z through the decoder's draws: their mean image, app/kinds/autoencoder). */
function sampled(m) {
  return m.kind === "sampler" || m.kind === "autoregressive" ||
    (m.kind === "autoencoder" && Boolean(served(m)?.card?.graphs?.decode));
}

function current() {
  return samplers.find((m) => m.name === $("sample-model").value);
}

function classes() {
  const signature = served(current())?.signature;
  return Number(signature?.num_labels || signature?.classes || 0);
}

function labelsFor() {
  const count = classes();
  $("sample-label-box").hidden = count === 0;
  if (count) {
    fillSelect($("sample-label"), [["all", `all (0–${count - 1} in turn)`], ...Array.from({ length: count }, (_, i) => [String(i), String(i)])]);
  }
}

function labels(n) {
  const count = classes();
  if (!count) return undefined;
  const chosen = $("sample-label").value;
  return chosen === "all" ? Array.from({ length: n }, (_, i) => i % count) : Number(chosen);
}

function seedOf(input) {
  const seed = Number(input.value);
  return Number.isInteger(seed) ? seed : input.value; // the api says what is wrong with the rest
}

export async function render() {
  const mine = ++drawn;
  const model = $("sample-model").value;
  if (!model) return;
  const n = Number($("sample-n").value);
  const body = {
    n,
    seed: seedOf($("sample-seed")),
    temperature: Number($("sample-temp").value),
    format: "grid",
    labels: labels(n),
  };
  const path = `/v1/models/${model}/sample`;
  const drawing = current()?.kind === "autoregressive" && canStream();
  const answer = await guarded($("sample-problem"), () =>
    drawing ? streamRows(path, body, () => mine === drawn) : api(path, { method: "POST", body }));
  if (mine !== drawn || !answer) return;
  $("sample-canvas").hidden = true;
  $("sample-grid").hidden = false;
  $("sample-grid").src = pngSrc(answer.grid);
  $("sample-grid").dataset.seed = String(answer.seed);
  const spread = answer.epistemic_std // an autoencoder's: the mean image over its decoder draws
    ? ` · mean of ${answer.draws} decoder draws, epistemic std ${mean(answer.epistemic_std).toFixed(2)} levels`
    : "";
  $("sample-caption").textContent =
    `${answer.model} v${answer.version} · seed ${answer.seed} · temperature ${answer.temperature} · ` +
    `${answer.provider} · sha256 ${answer.sha256.slice(0, 12)}…${spread}`;
}

function mean(rows) {
  const values = rows.flat(Infinity);
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

/** An autoregressive model's samples drawn on the canvas as each image row streams in (a grid
 * of n samples, `ceil(sqrt(n))` a row, grey = level / (V - 1)); the `done` answer returned. */
async function streamRows(path, body, latest) {
  const signature = served(current()).signature;
  const [height, width] = signature.shape;
  const scale = 4, gap = 2, cols = Math.ceil(Math.sqrt(body.n));
  const canvas = $("sample-canvas");
  canvas.width = cols * (width * scale + gap);
  canvas.height = Math.ceil(body.n / cols) * (height * scale + gap);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#888";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  canvas.hidden = false;
  $("sample-grid").hidden = true;
  const onEvent = (name, data) => {
    if (name !== "row" || !latest()) return;
    data.levels.forEach((levels, i) => {
      const x0 = (i % cols) * (width * scale + gap), y0 = Math.floor(i / cols) * (height * scale + gap);
      levels.forEach((level, x) => {
        const grey = Math.round((255 * level) / (signature.vocabulary - 1));
        ctx.fillStyle = `rgb(${grey},${grey},${grey})`;
        ctx.fillRect(x0 + x * scale, y0 + data.row * scale, scale, scale);
      });
    });
    canvas.dataset.rows = String(data.row + 1);
  };
  return streamEvents(path, { body, onEvent });
}

async function interpolate() {
  const model = $("sample-model").value;
  const count = classes();
  const body = {
    seeds: [seedOf($("interp-a")), seedOf($("interp-b"))],
    steps: Number($("interp-steps").value),
    format: "png",
  };
  if (count) body.labels = $("sample-label").value === "all" ? 0 : Number($("sample-label").value);
  const answer = await guarded($("interp-problem"), () => api(`/v1/models/${model}/interpolate`, { method: "POST", body }));
  if (!answer) return;
  $("interp-strip").replaceChildren(
    ...answer.frames.map((frame, i) => el("img", { src: pngSrc(frame), alt: `frame ${i + 1} of ${answer.frames.length}` })),
  );
}
