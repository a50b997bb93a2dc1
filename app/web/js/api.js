// The page's only way to the server: the public HTTP API, with its problem+json errors.

const KEY = "hanmo-api-key";

/** An API answer that was not a success: the RFC 9457 problem object it carried. */
export class ApiProblem extends Error {
  constructor(problem) {
    super(problem.detail || problem.title);
    this.problem = problem;
  }
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

/** fetch `path`; JSON in, JSON (or a Blob for image/* and font/*) out; ApiProblem otherwise. */
export async function api(path, { method = "GET", body, accept = "application/json", signal } = {}) {
  const headers = { accept };
  const key = getKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiProblem({ title: "Network error", detail: `the api did not answer: ${error.message}` });
  }
  if (!response.ok) throw new ApiProblem(await problemOf(response));
  if (response.status === 204) return null;
  if (!accept.includes("json")) return response.blob();
  return response.json();
}

/** Whether this browser reads a response's body as it arrives (fetch streaming): the page's
 * Server-Sent Events over POST need it; without it a caller asks for the JSON answer. */
export function canStream() {
  return typeof ReadableStream !== "undefined" && typeof TextDecoder !== "undefined" &&
    typeof Response !== "undefined" && "body" in Response.prototype;
}

/** POST `body` to `path` for Server-Sent Events: `onEvent(name, data)` as each event arrives,
 * the `done` event's data returned; a refusal before the stream, or a `failed` event, throws
 * its ApiProblem. (EventSource cannot POST, so the stream is read from fetch.) */
export async function streamEvents(path, { body, onEvent, signal }) {
  const headers = { accept: "text/event-stream", "content-type": "application/json" };
  const key = getKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiProblem({ title: "Network error", detail: `the api did not answer: ${error.message}` });
  }
  if (!response.ok) throw new ApiProblem(await problemOf(response));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (!event) continue; // a keep-alive comment
      if (event.name === "failed") throw new ApiProblem(event.data);
      if (event.name === "done") return event.data;
      onEvent(event.name, event.data);
    }
  }
  throw new ApiProblem({ title: "Stream ended", detail: "the event stream ended before its done event" });
}

/** One Server-Sent Event block as {name, data} (data parsed as JSON); null for comments. */
function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { name, data: JSON.parse(data.join("\n")) } : null;
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      const problem = await response.json();
      return { status: response.status, ...problem };
    } catch {
      // not JSON after all: fall through to the status line
    }
  }
  return { status: response.status, title: response.statusText || `HTTP ${response.status}`, detail: "" };
}

/** Show an error in `box`: a problem's title, detail and field errors; anything else as text. */
export function showProblem(box, error) {
  box.replaceChildren();
  const problem = error instanceof ApiProblem ? error.problem : { title: "Error", detail: String(error.message || error) };
  const title = document.createElement("strong");
  title.className = "problem-title";
  title.textContent = problem.status ? `${problem.title} (${problem.status})` : problem.title;
  const detail = document.createElement("span");
  detail.className = "problem-detail";
  detail.textContent = problem.detail || "";
  box.append(title, detail);
  if (Array.isArray(problem.errors) && problem.errors.length) {
    const list = document.createElement("ul");
    for (const item of problem.errors.slice(0, 8)) {
      const li = document.createElement("li");
      li.textContent = [item.field, item.message].filter(Boolean).join(": ");
      list.append(li);
    }
    box.append(list);
  }
  box.hidden = false;
}

export function clearProblem(box) {
  box.hidden = true;
  box.replaceChildren();
}

/** Run `task`; its errors land in `box` (and nowhere else is silent about them). */
export async function guarded(box, task) {
  clearProblem(box);
  try {
    return await task();
  } catch (error) {
    if (error.name === "AbortError") return undefined;
    showProblem(box, error);
    return undefined;
  }
}

let modelsPromise = null;

/** GET /v1/models once per page load (the Models tab refreshes it). */
export function models(refresh = false) {
  if (refresh || !modelsPromise) {
    modelsPromise = api("/v1/models").then((body) => body.models);
    modelsPromise.catch(() => { modelsPromise = null; });
  }
  return modelsPromise;
}

/** The alias a request that names no version is routed by: every request this page makes. */
export const SERVING_ALIAS = "production";

/** Whether a request naming no version reaches `model`: its serving alias names a READY version. */
export function serves(model) {
  const version = model.aliases[SERVING_ALIAS];
  return model.versions.some((v) => v.version === version && v.status === "READY");
}

/** Why `model` does not serve, in a few words, and what to do about it. */
export function whyNotServed(model) {
  const version = model.aliases[SERVING_ALIAS];
  const status = model.versions.find((v) => v.version === version)?.status;
  const why = version === undefined
    ? `no ${SERVING_ALIAS} alias serves this model`
    : `its ${SERVING_ALIAS} alias names v${version}, which is ${status || "missing"}`;
  return `${why}; promote a READY version to use it (hanmo models promote ${model.name} VERSION)`;
}

/** The models of `list` a picker offers: those that serve. `note` names the others, or hides. */
export function offered(list, note) {
  const rest = list.filter((m) => !serves(m)).map((m) => m.name);
  note.textContent = rest.length
    ? `Not offered: ${rest.join(", ")}. No ${SERVING_ALIAS} alias serves ${rest.length === 1 ? "it" : "them"}; ` +
      "promote a version to use one (the Models tab says more)."
    : "";
  note.hidden = !rest.length;
  return list.filter(serves);
}

/** The version a model's signature and card are read from: the one the serving alias names,
 * else (a model that does not serve, shown on the Models tab) the newest. */
export function served(model) {
  const version = model.aliases[SERVING_ALIAS] ?? Math.max(...model.versions.map((v) => v.version));
  return model.versions.find((v) => v.version === version) || model.versions[0];
}

export function pngSrc(base64) {
  return `data:image/png;base64,${base64}`;
}

/** A File or Blob as base64 (no data: prefix). */
export function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Fill a <select> with `items` ([value, label] pairs), keeping the current choice when it is still there. */
export function fillSelect(select, items) {
  const keep = select.value;
  select.replaceChildren(...items.map(([value, label]) => new Option(label, value)));
  if (items.some(([value]) => String(value) === keep)) select.value = keep;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
