// Models: every served model with its versions, aliases, card metrics and a plot drawn from them;
// below them, the registered models that do not serve, each with why and what to do.

import { api, el, guarded, models, pngSrc, served, serves, whyNotServed } from "./api.js";
import { format, frame, svg } from "./plot.js";

const $ = (id) => document.getElementById(id);

export async function start() {
  await refresh();
}

export function shown() {
  refresh();
}

async function refresh() {
  const list = await guarded($("models-problem"), () => models(true));
  if (!list) return;
  $("models").replaceChildren(...list.filter(serves).map(card));
  const rest = list.filter((m) => !serves(m));
  $("models-unserved").replaceChildren(...rest.map(card));
  $("models-unserved-box").hidden = !rest.length;
}

function card(model) {
  const version = served(model);
  const live = serves(model); // a model that does not serve cannot draw samples now
  const aliases = Object.entries(model.aliases).map(([alias, v]) => `${alias} → v${v}`).join(", ") || "none";
  const body = el("article", { class: "model", "data-model": model.name },
    el("h3", {}, model.name, el("span", { class: "kind", text: model.kind })),
    el("p", { text: clip(model.description || "", 240) }),
    ...(live ? [] : [el("p", { class: "note", text: whyNotServed(model) })]),
    table([["aliases", aliases]]),
    versions(model),
  );
  const metrics = version.metrics || {};
  const signature = version.signature || {};
  if (model.kind === "predictive" && signature.task === "regression") regression(body, metrics);
  else if (model.kind === "predictive") classification(body, metrics);
  else if (model.kind === "sampler") sampler(body, model, metrics, signature, live);
  else if (model.kind === "style_transfer") styleTransfer(body, metrics);
  else if (model.kind === "autoencoder") autoencoder(body, metrics);
  body.append(provenance(version));
  return body;
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function table(rows, head) {
  const t = el("table");
  if (head) t.append(el("tr", {}, ...head.map((h) => el("th", { text: h }))));
  for (const row of rows) {
    t.append(el("tr", {}, ...row.map((cell, i) => (cell instanceof Node ? el("td", {}, cell) : el(i ? "td" : "th", { class: i ? "num" : "", text: String(cell) })))));
  }
  return t;
}

function versions(model) {
  const rows = model.versions.map((v) => [`v${v.version}`, v.status, date(v.created_at), el("span", { class: "sha", text: `${v.sha256.slice(0, 10)}…` })]);
  return table(rows, ["version", "status", "created", "sha256"]);
}

/** An ISO timestamp as its date, on one line (CSS: time never wraps); the whole on hover. */
function date(iso) {
  if (!iso) return "";
  return el("time", { datetime: iso, title: iso, text: iso.slice(0, 10) });
}

function pm(m) {
  if (m === undefined || m === null) return "—";
  if (typeof m === "number") return format(m);
  return `${format(m.mean)} ± ${format(m.se)}`;
}

function regression(body, metrics) {
  const m = metrics.this_model || {};
  body.append(table([["RMSE", pm(m.rmse)], ["log-likelihood", pm(m.ll)], ["90% interval coverage", pm(m.picp_90)]]));
  const curve = metrics.coverage_curve;
  if (!curve) return;
  const points = Object.entries(curve).map(([level, c]) => [Number(level) / 100, c.mean, c.se]);
  const { root, sx, sy } = frame({ width: 360, height: 240, x: [0, 1], y: [0, 1], xlabel: "nominal interval level", ylabel: "observed coverage", margin: { l: 44, r: 10, t: 10, b: 36 } });
  root.append(svg("line", { class: "diag", x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1) }));
  for (const [x, y, se] of points) {
    root.append(svg("line", { class: "axis", x1: sx(x), x2: sx(x), y1: sy(y - 2 * se), y2: sy(y + 2 * se) }));
    root.append(svg("circle", { class: "obs", cx: sx(x), cy: sy(y), r: 3 }));
  }
  body.append(el("figure", { class: "plot" }, root, el("figcaption", { class: "status", text: "Interval coverage over the test splits (±2 se); on the dashed line is calibrated." })));
}

function autoencoder(body, metrics) {
  const h = metrics.headline || {};
  const auroc = (scores) => ["inverted", "noise", "letters"].map((set) => pm((scores || {})[set])).join(" / ");
  body.append(table([
    ["test log p(x), nats", pm(h.test_log_px_nats)],
    ["OOD AUROC, −log p(x): inverted / noise / letters", auroc(h.ood_auroc_bae_nll)],
    ["VAE −ELBO (baseline)", auroc(h.ood_auroc_vae_neg_elbo)],
    ["VAE reconstruction error (baseline)", auroc(h.ood_auroc_vae_recon_error)],
  ]));
}

function classification(body, metrics) {
  const m = metrics.this_model || {};
  body.append(table([
    ["accuracy", pm(m.accuracy)],
    ["NLL", pm(m.nll)],
    ["ECE", pm(m.ece)],
    ["OOD AUROC (MI), permuted", pm(m.ood_auroc_mi_permuted)],
  ]));
  const r = metrics.reliability;
  if (!r) return;
  const { root, sx, sy } = frame({ width: 360, height: 240, x: [0, 1], y: [0, 1], xlabel: "confidence", ylabel: "accuracy", margin: { l: 44, r: 10, t: 10, b: 36 } });
  root.append(svg("line", { class: "diag", x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1) }));
  const bins = r.count.length;
  r.count.forEach((count, i) => {
    if (!count) return;
    const x0 = i / bins;
    root.append(svg("rect", { class: "bar", x: sx(x0) + 1, width: sx(1 / bins) - sx(0) - 2, y: sy(r.accuracy[i]), height: sy(0) - sy(r.accuracy[i]) }));
    root.append(svg("circle", { class: "obs", cx: sx(r.confidence[i]), cy: sy(r.accuracy[i]), r: 2.5 }));
  });
  body.append(el("figure", { class: "plot" }, root, el("figcaption", { class: "status", text: "Reliability on the test split: accuracy per confidence bin (dots at the bin's mean confidence)." })));
}

function sampler(body, model, metrics, signature, live) {
  const scalars = Object.entries(metrics).filter(([, v]) => typeof v === "number").slice(0, 6);
  if (scalars.length) body.append(table(scalars.map(([k, v]) => [k.replaceAll("_", " "), format(v)])));
  if (!live) return;
  const img = el("img", { class: "samples", alt: `16 samples from ${model.name}, seed 0` });
  body.append(el("figure", { class: "plot" }, img, el("figcaption", { class: "status", text: "16 samples, seed 0, drawn now." })));
  const classes = Number(signature.num_labels || 0);
  const request = { n: 16, seed: 0, format: "grid" };
  if (classes) request.labels = Array.from({ length: 16 }, (_, i) => i % classes);
  api(`/v1/models/${model.name}/sample`, { method: "POST", body: request })
    .then((answer) => { img.src = pngSrc(answer.grid); })
    .catch((error) => { img.replaceWith(el("span", { class: "status", text: `samples unavailable: ${error.message}` })); });
}

function styleTransfer(body, metrics) {
  const targets = Object.entries(metrics.targets || {});
  if (targets.length) {
    body.append(table(targets.map(([name, t]) => [
      name.replace("unseen_fonts_unseen_chars.", "unseen fonts × chars · ").replace("seen_fonts_unseen_chars.", "seen fonts · "),
      format(t.value),
      t.target,
      el("span", { class: t.met ? "met" : "unmet", text: t.met ? "met" : "not met" }),
    ]), ["target", "value", "goal", ""]));
  }
  const k4 = metrics.grid?.unseen_fonts_unseen_chars?.k4;
  if (k4) {
    const rows = ["model", "content_copy", "nearest_font", "oracle_font"].filter((k) => k4[k]).map((k) => [k.replaceAll("_", " "), format(k4[k].l1), format(k4[k].ssim), format(k4[k].iou)]);
    body.append(table(rows, ["held-out fonts, k = 4", "L1", "SSIM", "IoU"]));
  }
}

function provenance(version) {
  const c = version.card || {};
  const rows = [
    ["data", c.data?.source || c.data?.glyphs || "—"],
    ["seed", c.seed ?? "—"],
    ["command", c.command || "—"],
    ["code revision", c.code_revision || "—"],
  ];
  const shown = { ...c, signature: { ...c.signature } };
  delete shown.signature.chars; // thousands of characters
  return el("details", {}, el("summary", { text: "card" }), table(rows), el("pre", { text: JSON.stringify(shown, null, 1).slice(0, 20000) }));
}
