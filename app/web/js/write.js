// Write: references (a demo style, uploads, drawings) → a saved style → the text, glyph by glyph.

import {
  api, base64Of, canStream, clearProblem, el, fillSelect, guarded, models, offered, pngSrc, showProblem, streamEvents,
} from "./api.js";
import { Pad } from "./draw.js";

const MAX_REFERENCES = 16;
const $ = (id) => document.getElementById(id);

let refs = []; // {image: base64, char, src}
let style = null; // {id, model}: the style of the current references, made on the first Write
let run = 0; // the latest Write; older ones stop updating the page
let pad;
let demos = []; // styles.json: the held-out fonts' reference glyphs

export async function start() {
  pad = new Pad($("ref-pad"), { brush: () => Number($("ref-pad-brush").value) });
  $("write-demo").addEventListener("change", () => pickDemo($("write-demo").value));
  $("write-model").addEventListener("change", () => { style = null; });
  $("ref-upload").addEventListener("change", (e) => upload(e.target));
  $("ref-clear").addEventListener("click", () => setRefs([]));
  $("ref-pad-add").addEventListener("click", addDrawing);
  $("ref-pad-clear").addEventListener("click", () => pad.clear());
  $("write-go").addEventListener("click", write);
  $("write-save").addEventListener("click", save);
  $("write-text").addEventListener("keydown", (e) => { if (e.key === "Enter") write(); });
  const box = $("write-problem");
  const ready = await guarded(box, async () => {
    const registered = (await models()).filter((m) => m.kind === "style_transfer");
    const served = offered(registered, $("write-unserved"));
    fillSelect($("write-model"), served.map((m) => [m.name, m.name]));
    if (!served.length) throw new Error(`no style-transfer model is ${registered.length ? "served" : "registered"}`);
    return true;
  });
  if (!ready) return; // the problem stays in view (a later step would clear it)
  demos = (await guarded(box, async () => (await api("/ui/demo/styles.json")).styles)) || [];
  if (demos.length) {
    fillSelect($("write-demo"), [["", "— none —"], ...demos.map((d) => [d.id, d.label])]);
    $("write-demo").value = demos[0].id;
    await pickDemo(demos[0].id);
  }
}

async function pickDemo(id) {
  const demo = demos.find((d) => d.id === id);
  if (!demo) return;
  await guarded($("write-problem"), async () => {
    const loaded = await Promise.all(demo.files.map(async (file, i) => {
      const blob = await api(`/ui/demo/${file}`, { accept: "image/png" });
      return { image: await base64Of(blob), char: [...demo.chars][i] };
    }));
    setRefs(loaded.map((r) => ({ ...r, src: pngSrc(r.image) })));
  });
}

function setRefs(list) {
  refs = list.slice(0, MAX_REFERENCES);
  style = null;
  renderRefs();
  if (list.length > MAX_REFERENCES) {
    showProblem($("write-problem"), new Error(`kept the first ${MAX_REFERENCES} of ${list.length} references: a style is read from 1 to ${MAX_REFERENCES}`));
  }
}

function renderRefs() {
  const items = refs.map((ref, i) => {
    const char = el("input", { maxlength: "1", "aria-label": `Character of reference ${i + 1}` });
    char.value = ref.char;
    char.addEventListener("input", () => { ref.char = char.value; style = null; });
    const remove = el("button", { type: "button", class: "quiet", text: "remove", "aria-label": `Remove reference ${i + 1}` });
    remove.addEventListener("click", () => setRefs(refs.filter((r) => r !== ref)));
    return el("li", {}, el("img", { src: ref.src, alt: `reference ${ref.char}` }), char, remove);
  });
  $("refs").replaceChildren(...items);
  $("ref-count").textContent = `${refs.length} of ${MAX_REFERENCES}`;
}

async function upload(input) {
  const files = [...input.files];
  input.value = "";
  await guarded($("write-problem"), async () => {
    const added = await Promise.all(files.map(async (file) => {
      const image = await base64Of(file);
      const stem = file.name.replace(/\.[^.]*$/, "");
      const char = [...stem].length === 1 ? stem : ""; // 永.png says which character it shows
      return { image, char, src: URL.createObjectURL(file) };
    }));
    setRefs([...refs, ...added]);
    $("write-demo").value = "";
  });
}

async function addDrawing() {
  const box = $("write-problem");
  clearProblem(box);
  const char = $("ref-pad-char").value.trim();
  if (!pad.inked || !char) {
    showProblem(box, new Error("draw a character and type which one it is first"));
    return;
  }
  const blob = await pad.toBlob();
  setRefs([...refs, { image: await base64Of(blob), char, src: URL.createObjectURL(blob) }]);
  $("write-demo").value = "";
  pad.clear();
  $("ref-pad-char").value = "";
}

function references() {
  return refs.map(({ image, char }) => ({ image, char }));
}

async function ensureStyle(model) {
  if (style && style.model === model) return style.id;
  const made = await api("/v1/styles", { method: "POST", body: { model, references: references(), ttl_s: 3600 } });
  style = { id: made.style_id, model };
  return style.id;
}

function cells(text) {
  const byChar = new Map();
  const figures = [...text].map((ch) => {
    if (/\s/.test(ch)) return el("div", { class: "glyph space" });
    const cell = el("div", { class: "cell pending" });
    const caption = el("figcaption", { text: ch });
    const figure = el("figure", { class: "glyph", "data-char": ch }, cell, caption);
    if (!byChar.has(ch)) byChar.set(ch, []);
    byChar.get(ch).push({ cell, caption });
    return figure;
  });
  $("glyphs").replaceChildren(...figures);
  return byChar;
}

async function write() {
  const mine = ++run;
  const box = $("write-problem");
  const model = $("write-model").value;
  const text = $("write-text").value;
  $("write-downloads").hidden = true;
  $("write-unsupported").hidden = true;
  $("write-confidence").hidden = true;
  if (!text.trim()) {
    showProblem(box, new Error("type some text to write"));
    return;
  }
  const byChar = cells(text);
  const status = $("write-status");
  $("write-go").disabled = true;
  const done = await guarded(box, async () => {
    status.textContent = `reading the style of ${refs.length} reference${refs.length === 1 ? "" : "s"}…`;
    const styleId = await ensureStyle(model);
    const glyphs = new Map();
    let shown; // the style's confidence as the first glyph carries it, until the answer's own
    const answer = await writeText(model, styleId, text, (glyph) => {
      if (mine !== run) return;
      glyphs.set(glyph.char, glyph);
      if (shown === undefined) styleConfidence((shown = glyph.confidence));
      show(byChar.get(glyph.char), glyph.char, glyph, shown);
      status.textContent = `${glyphs.size} of ${byChar.size} characters`;
    });
    if (mine === run) {
      for (const ch of answer.unsupported) show(byChar.get(ch) || [], ch, null);
      if (answer.confidence !== undefined && answer.confidence !== shown) {
        styleConfidence(answer.confidence); // captions said "own" against the wrong figure
        for (const [ch, glyph] of glyphs) show(byChar.get(ch), ch, glyph, answer.confidence);
      }
    }
    return { glyphs, unsupported: answer.unsupported, styleId };
  });
  if (mine !== run) return;
  $("write-go").disabled = false;
  if (!done) {
    status.textContent = "";
    return;
  }
  status.textContent = `${done.glyphs.size} character${done.glyphs.size === 1 ? "" : "s"} written in this style`;
  if (done.unsupported.length) {
    $("write-unsupported").textContent = `The model cannot write: ${done.unsupported.join(" ")}`;
    $("write-unsupported").hidden = false;
  }
  if (done.glyphs.size) await downloads(model, done.styleId, text, done.glyphs);
}

/** The text in the saved style, each glyph handed to `onGlyph` as it comes: streamed as
 * Server-Sent Events (one request; the workers make 64 glyphs a step and the api sends each as
 * soon as it has it), or, where this browser cannot read a response as it arrives, the JSON
 * answer's glyphs at once. Returns the answer's summary (`unsupported`, `confidence`). A text
 * of only unwritable characters is a 422 on `text`: that is the answer "all unsupported". */
async function writeText(model, styleId, text, onGlyph) {
  const path = `/v1/models/${model}/style-transfer`;
  const body = { style_id: styleId, text, formats: ["png", "svg"] };
  try {
    if (!canStream()) {
      const answer = await api(path, { method: "POST", body });
      answer.glyphs.forEach(onGlyph);
      return answer;
    }
    const onEvent = (name, data) => { if (name === "glyph") onGlyph(data); };
    return await streamEvents(path, { body, onEvent });
  } catch (error) {
    const fields = (error.problem?.errors || []).map((e) => e.field);
    if (error.problem?.status === 422 && fields.length === 1 && fields[0] === "text") {
      return { unsupported: [...new Set([...text].filter((ch) => !/\s/.test(ch)))] };
    }
    if (error.problem?.status === 404) style = null; // the style expired: the next Write remakes it
    throw error;
  }
}

/** The style's confidence, shown once: one figure for the whole style, not a glyph's own. */
function styleConfidence(value) {
  const line = $("write-confidence");
  line.textContent = `Style confidence ${value.toFixed(2)}: how well the references pin the style ` +
    "down (one figure for the style, the same for every glyph).";
  line.hidden = false;
}

/** A glyph's caption carries a confidence only when it is the glyph's own: the response's
 * `glyphs[].confidence` is the style's repeated (its schema says so), so a value equal to the
 * style's says nothing about that glyph. */
function show(targets, ch, glyph, style) {
  for (const { cell, caption } of targets) {
    cell.classList.remove("pending");
    if (glyph) {
      cell.replaceChildren(el("img", { src: pngSrc(glyph.png), alt: ch, "data-char": ch }));
      const own = typeof glyph.confidence === "number" && glyph.confidence !== style;
      caption.textContent = own ? `${ch} · confidence ${glyph.confidence.toFixed(2)}` : ch;
    } else {
      cell.classList.add("unsupported");
      cell.textContent = ch;
      caption.textContent = `${ch} · not in the model`;
    }
  }
}

async function downloads(model, styleId, text, glyphs) {
  await guarded($("write-problem"), async () => {
    const sheet = await api(`/v1/models/${model}/style-transfer`, {
      method: "POST",
      accept: "image/png",
      body: { style_id: styleId, text, sheet: true },
    });
    $("download-png").href = URL.createObjectURL(sheet);
    $("download-svg").href = URL.createObjectURL(new Blob([svgOf(text, glyphs)], { type: "image/svg+xml" }));
    $("write-downloads").hidden = false;
  });
}

/** The text as one SVG: each glyph's own SVG placed side by side (gaps for spaces and unknowns). */
function svgOf(text, glyphs) {
  const size = 128;
  const chars = [...text];
  const parts = chars.map((ch, i) => {
    const glyph = glyphs.get(ch);
    if (!glyph?.svg) return "";
    return glyph.svg.replace("<svg ", `<svg x="${i * size}" y="0" `);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${chars.length * size}" height="${size}" ` +
    `viewBox="0 0 ${chars.length * size} ${size}"><rect width="100%" height="100%" fill="#fff"/>${parts.join("")}</svg>`;
}

async function save() {
  const box = $("write-problem");
  const saved = $("write-saved");
  saved.hidden = true;
  const made = await guarded(box, () =>
    api("/v1/styles", { method: "POST", body: { model: $("write-model").value, references: references() } }),
  );
  if (!made) return;
  const expires = new Date(made.expires_ms);
  saved.replaceChildren(
    "Saved as ",
    el("code", { id: "saved-style-id", text: made.style_id }),
    ` (version ${made.version}, until `,
    el("time", { datetime: expires.toISOString(), text: expires.toISOString().slice(0, 10) }),
    `). Send it as "style_id" to /v1/models/${made.model}/style-transfer.`,
  );
  saved.hidden = false;
}
