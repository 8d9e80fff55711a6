// resdsl serve's page: the editor's text and the overrides go to /api/check (errors, params, report),
// then /api/diagram (the collapsed view and one stage's block); /api/model gives model.py.
"use strict";

const MAX_SPEC_BYTES = 1000000;  // resdsl.lang.imports.MAX_SPEC_BYTES: checked here too, before sending
const SHORTCUTS = ["A", "B", "C", "none"];
const $ = (id) => document.getElementById(id);

const state = {
  path: "",
  sets: {},            // overrides: name -> text (the shortcut switch is "shortcut")
  params: [],          // the spec's params, from the last check
  stage: null,         // the stage whose block is drawn
  blockIndex: 0,
  generation: 0,       // a newer edit makes older answers stale
  controller: null,
  timer: null,
};

const editor = new SpecEditor($("editor"), () => schedule(300));

async function post(endpoint, body, signal) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  let data;
  try { data = await response.json(); } catch (_) { data = { error: `the server answered ${response.status}` }; }
  if (data.error) throw new RequestError(data.error);
  return data;
}

class RequestError extends Error {}

function schedule(ms) {
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, ms);
}

function request() {
  const sets = {};
  for (const [k, v] of Object.entries(state.sets)) if (v !== "") sets[k] = v;
  return { spec: editor.value, sets };
}

async function refresh() {
  const generation = ++state.generation;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const body = request();
  setStatus("checking…", "busy");
  showRequestError(null);
  const size = new TextEncoder().encode(body.spec).length;
  if (size > MAX_SPEC_BYTES) {
    const message = `cannot read spec \`${state.path}\`: it is ${size.toLocaleString("en-US")} bytes, more than the limit of 1,000,000 bytes for a spec file`;
    showCheck({ ok: false, errors: [{ message, rendered: `error: ${message}`, in_editor: false }] });
    return;
  }
  try {
    const check = await post("/api/check", body, controller.signal);
    if (generation !== state.generation) return;
    showCheck(check);
    if (!check.ok) return;
    const stages = check.report.stages;
    if (!stages.includes(state.stage)) { state.stage = stages[0] || null; state.blockIndex = 0; }
    const collapsed = post("/api/diagram", { ...body, view: "collapsed" }, controller.signal);
    const block = state.stage ? post("/api/diagram", { ...body, view: "block", block: blockName() }, controller.signal) : null;
    const svg = await collapsed;
    if (generation !== state.generation) return;
    showDiagram($("diagram"), svg);
    hookStages();
    if (block) {
      const inner = await block;
      if (generation !== state.generation) return;
      showDiagram($("block"), inner);
    } else {
      $("block").replaceChildren(note("this network has no stages of blocks"));
    }
    showBlockPicker(check);
    setStatus(summaryText(check.summary), "ok");
  } catch (err) {
    if (err.name === "AbortError" || generation !== state.generation) return;
    showRequestError(err instanceof RequestError ? err.message : `cannot reach the server: ${err.message}`);
    setStatus("no answer", "bad");
  }
}

function blockName() { return state.blockIndex ? `${state.stage}.${state.blockIndex}` : state.stage; }

// ---------------------------------------------------------------- check: status, errors, params, report

function summaryText(s) {
  return `${s.name} · ${s.layers} layers · ${s.params.toLocaleString("en-US")} params · ${s.flops.toLocaleString("en-US")} FLOPs`;
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

function showRequestError(message) {
  const el = $("request-error");
  el.hidden = !message;
  el.textContent = message || "";
}

function showCheck(check) {
  if (check.params) showParams(check.params, check.ignored || [], check.errors || []);
  const errors = check.errors || [];
  editor.mark(errors.filter((e) => e.in_editor && e.line));
  const list = $("errors");
  list.replaceChildren(...errors.map(errorItem));
  document.body.classList.toggle("stale", !check.ok);
  if (check.ok) {
    showReport(check.report);
    showShortcut(check.shortcut);
  } else {
    const n = errors.length;
    setStatus(`${n} error${n === 1 ? "" : "s"}`, "bad");
    showShortcut(null);
  }
}

function errorItem(e) {
  const item = document.createElement("div");
  item.className = "error-item";
  if (e.line) item.dataset.line = e.line;
  const pre = document.createElement("pre");
  pre.textContent = e.rendered || `error: ${e.message}`;
  item.appendChild(pre);
  if (e.in_editor && e.line) {
    item.classList.add("jump");
    item.title = "show it in the editor";
    item.addEventListener("click", () => editor.reveal(e));
  }
  return item;
}

function showShortcut(current) {
  const box = $("shortcut");
  const chosen = state.sets.shortcut || "";
  const buttons = [["", current && !chosen ? `as written (${current})` : "as written"], ...SHORTCUTS.map((s) => [s, s])];
  box.replaceChildren(...buttons.map(([value, label]) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.value = value;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(value === chosen));
    b.addEventListener("click", () => { state.sets.shortcut = value; showShortcut(current); schedule(0); });
    return b;
  }));
}

function showParams(params, ignored, errors) {
  for (const name of ignored) delete state.sets[name];
  const names = params.map((p) => `${p.name}@${p.path}`).join(",");
  const box = $("params");
  if (box.dataset.names !== names) {
    box.dataset.names = names;
    box.replaceChildren(...params.map((p) => {
      const label = document.createElement("label");
      label.title = `param ${p.name} = ${p.default} (${p.path}:${p.line}); empty: the spec's value`;
      const span = document.createElement("span");
      span.textContent = p.name;
      const input = document.createElement("input");
      input.name = p.name;
      input.placeholder = p.default;
      input.value = state.sets[p.name] || "";
      input.size = Math.max(4, Math.min(14, p.default.length + 2));
      input.addEventListener("input", () => { state.sets[p.name] = input.value.trim(); schedule(250); });
      label.append(span, input);
      return label;
    }));
    if (!params.length) box.replaceChildren(note("none"));
  }
  const wrong = new Set(errors.filter((e) => e.field).map((e) => e.field));
  for (const input of box.querySelectorAll("input")) input.classList.toggle("invalid", wrong.has(input.name));
}

function showReport(report) {
  $("report-title").textContent = report.title;
  const body = $("report").querySelector("tbody");
  body.replaceChildren(...report.rows.map((r) => {
    const tr = document.createElement("tr");
    tr.className = r.kind;
    for (const key of ["stage", "output", "blocks", "layout", "params", "flops", "acts", "acts_f32"]) {
      const td = document.createElement("td");
      td.textContent = r[key];
      if (["params", "flops", "acts", "acts_f32"].includes(key)) td.className = "num";
      if (key === "layout") td.className = "mono";
      tr.appendChild(td);
    }
    if (report.stages.includes(r.stage)) {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => pickStage(r.stage));
    }
    return tr;
  }));
  const t = report.totals;
  const memory = report.memory ? ` · training memory at batch ${report.memory.batch}: about ${report.memory.total}` : "";
  $("totals").innerHTML = "";
  $("totals").append(
    figure("layers", t.layers), figure("params", t.params), figure("FLOPs", `${t.flops} (${t.flops_short})`),
    figure("acts", `${t.acts} (${t.acts_f32})`),
  );
  if (memory) $("totals").append(note(memory.slice(3)));
  markStage();
}

function figure(name, value) {
  const span = document.createElement("span");
  span.className = "figure";
  const b = document.createElement("b");
  b.textContent = value;
  span.append(`${name} `, b);
  return span;
}

function note(text) {
  const span = document.createElement("span");
  span.className = "muted";
  span.textContent = text;
  return span;
}

// ---------------------------------------------------------------- diagrams

function showDiagram(box, answer) {
  if (!answer.ok) { box.replaceChildren(...(answer.errors || []).map(errorItem)); return; }
  const doc = new DOMParser().parseFromString(answer.svg, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") { box.replaceChildren(note("the diagram could not be read")); return; }
  for (const s of svg.querySelectorAll("script, foreignObject")) s.remove();  // a diagram only draws
  // Graphviz gives the size in pt and a viewBox: the CSS fits it into the card (or shows it full size)
  svg.style.setProperty("--full-width", svg.getAttribute("width"));
  svg.style.setProperty("--full-height", svg.getAttribute("height"));
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  box.replaceChildren(document.importNode(svg, true));
}

function hookStages() {
  const svg = $("diagram").querySelector("svg");
  if (!svg) return;
  const stages = new Set(stagesNow());
  for (const g of svg.querySelectorAll("g.node")) {
    const name = (g.id || "").replace(/^section_/, "");
    if (!g.id.startsWith("section_") || !stages.has(name)) continue;
    g.classList.add("stage");
    g.addEventListener("click", () => pickStage(name));
    const title = g.querySelector("title");
    if (title) title.textContent = `${name}: click to see its blocks`;
  }
  markStage();
}

function stagesNow() {
  return [...$("report").querySelectorAll("tr.clickable td:first-child")].map((td) => td.textContent);
}

function markStage() {
  for (const g of document.querySelectorAll("#diagram g.stage")) g.classList.toggle("selected", g.id === `section_${state.stage}`);
  for (const tr of document.querySelectorAll("#report tbody tr")) tr.classList.toggle("selected", tr.firstChild.textContent === state.stage);
}

function pickStage(name) {
  if (state.stage === name) return;
  state.stage = name;
  state.blockIndex = 0;
  markStage();
  drawBlock();
}

async function drawBlock() {
  const generation = state.generation;
  $("block-name").textContent = blockName();
  try {
    const answer = await post("/api/diagram", { ...request(), view: "block", block: blockName() });
    if (generation === state.generation) showDiagram($("block"), answer);
  } catch (err) {
    showRequestError(err.message);
  }
}

function showBlockPicker(check) {
  const row = check.report.rows.find((r) => r.stage === state.stage);
  const count = row ? parseInt(row.blocks, 10) || 1 : 1;
  const select = $("block-index");
  select.replaceChildren(...Array.from({ length: count }, (_, i) => {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = `block ${i + 1} of ${count}`;
    return o;
  }));
  if (state.blockIndex >= count) state.blockIndex = 0;
  select.value = String(state.blockIndex);
  select.hidden = count < 2;
  $("block-name").textContent = state.stage ? blockName() : "";
}

$("block-index").addEventListener("change", (e) => {
  state.blockIndex = parseInt(e.target.value, 10) || 0;
  drawBlock();
});

for (const button of document.querySelectorAll("button.zoom")) {
  button.addEventListener("click", () => {
    const full = $(button.dataset.target).classList.toggle("full");
    button.textContent = full ? "fit" : "full size";
  });
}

// ---------------------------------------------------------------- downloads

function save(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$("download-model").addEventListener("click", async () => {
  showRequestError(null);
  try {
    const answer = await post("/api/model", request());
    if (!answer.ok) {
      showCheck(answer);
      showRequestError("model.py cannot be generated: fix the errors first");
      return;
    }
    save(answer.filename, answer.source, "text/x-python");
  } catch (err) {
    showRequestError(err.message);
  }
});

$("download-spec").addEventListener("click", () => {
  save(state.path.split("/").pop() || "spec.rd", editor.value, "text/plain");
});

// ---------------------------------------------------------------- start

(async () => {
  try {
    const response = await fetch("/api/spec");
    const spec = await response.json();
    state.path = spec.path;
    state.sets = { ...spec.sets };
    $("spec-path").textContent = spec.path;
    document.title = `${spec.path} · resdsl serve`;
    editor.value = spec.text;
    showShortcut(null);
    refresh();
  } catch (err) {
    showRequestError(`cannot reach the server: ${err.message}`);
  }
})();
