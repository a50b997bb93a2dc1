// Tabs, the API key field, and each tab's start on first view.

import { getKey, setKey } from "./api.js";
import * as write from "./write.js";
import * as sample from "./sample.js";
import * as uncertainty from "./uncertainty.js";
import * as models from "./models.js";

const TABS = { write, sample, uncertainty, models };
const started = new Set();

function show(name) {
  for (const tab of Object.keys(TABS)) {
    const selected = tab === name;
    document.getElementById(`tab-${tab}`).setAttribute("aria-selected", String(selected));
    document.getElementById(`panel-${tab}`).hidden = !selected;
  }
  if (!started.has(name)) {
    started.add(name);
    TABS[name].start();
  } else {
    TABS[name].shown?.();
  }
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function init() {
  for (const tab of Object.keys(TABS)) {
    document.getElementById(`tab-${tab}`).addEventListener("click", () => show(tab));
  }
  const key = document.getElementById("api-key");
  key.value = getKey();
  const use = () => {
    if (key.value.trim() === getKey()) return;
    setKey(key.value.trim());
    location.reload(); // every tab starts again with the key
  };
  key.addEventListener("change", use);
  key.addEventListener("keydown", (e) => { if (e.key === "Enter") use(); });
  document.getElementById("api-key-use").addEventListener("click", use);
  const first = location.hash.slice(1);
  show(first in TABS ? first : "write");
}

init();
