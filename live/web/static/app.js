// beatcanvas studio: plain JS, no build step. Talks to the show over one WebSocket (knobs,
// commands, scopes, preview) and a few JSON endpoints (knob table, library, TOML editor).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const q = (path) => token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
const $ = (id) => document.getElementById(id);
const state = { ws: null, knobs: {}, values: {}, midi: false, preset: "", editing: false, checkId: 0,
                scopes: null, sentId: 0, toggles: { blackout: false, freeze: false }, previewUrl: null };

// ---- helpers -----------------------------------------------------------------------------------
function toast(message, info) {
  const t = $("toast");
  t.textContent = message;
  t.className = info ? "info" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, info ? 2500 : 6000);
}
async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(body) };
  if (token) opts.headers = Object.assign(opts.headers || {}, { "X-Beatcanvas-Token": token });
  const r = await fetch(q(path), opts);
  const data = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}
function send(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
  else toast("not connected to the show");
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- WebSocket ---------------------------------------------------------------------------------
function connect() {
  const ws = new WebSocket(q(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`));
  ws.binaryType = "blob";
  state.ws = ws;
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn on"; setPreview(); };
  ws.onclose = () => { $("conn").textContent = "disconnected"; $("conn").className = "conn off";
                       setTimeout(connect, 1500); };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") return showPreview(ev.data);
    const m = JSON.parse(ev.data);
    if (m.type === "hello") { state.midi = m.midi; updateMidi(); }
    else if (m.type === "state") onState(m);
    else if (m.type === "error") toast(m.message);
    else if (m.type === "problems") onProblems(m);
  };
}
function setPreview() { send({ type: "preview", on: $("preview-on").checked }); }
function showPreview(blob) {
  const url = URL.createObjectURL(blob);
  const img = $("preview");
  img.onload = () => { if (state.previewUrl) URL.revokeObjectURL(state.previewUrl); state.previewUrl = url; };
  img.src = url;
}
function onState(m) {
  const s = m.scopes;
  if (s.history) state.history = s.history;
  s.history = state.history || [];
  state.scopes = s;
  if (s.preset && s.preset !== state.preset) {
    const switched = state.preset !== "";
    state.preset = s.preset;
    $("preset-name").textContent = s.preset;
    markCurrent();
    if (switched && !state.dirty) loadText();
  }
  if (m.values) { state.values = m.values; updateKnobs(); }
  $("fps").textContent = `display ${s.display_fps.toFixed(1)} fps · render ${s.render_fps.toFixed(1)} fps` +
    (s.latency_ms !== null ? ` · audio→photon ${s.latency_ms.toFixed(0)} ms` : "");
  $("btn-freeze").classList.toggle("active", s.frozen);
  const ahead = [s.cue && `cue: ${s.cue}`, s.lyric && `♪ ${s.lyric}`, s.message].filter(Boolean).join("   ");
  $("ahead").textContent = ahead;
  if (s.error && s.error !== state.lastError) { state.lastError = s.error; toast(s.error); }
  drawScopes();
}

// ---- knobs -------------------------------------------------------------------------------------
async function loadKnobs() {
  const table = await api("/api/knobs");
  const root = $("knobs");
  root.textContent = "";
  table.sections.forEach((section, i) => {
    const d = el("details", { class: "section", open: i < 4 ? "" : null }, el("summary", {}, `[${section.name}]`));
    for (const k of section.knobs) { state.knobs[k.address] = k; d.append(knobRow(k)); }
    root.append(d);
  });
  updateKnobs();
  updateMidi();
}
function rangeText(k) {
  if (k.kind === "choice") return k.choices.join(" | ");
  if (k.lo === null && k.hi === null) return k.kind;
  return `${k.lo ?? "…"}${k.lo_open ? " (excl.)" : ""} … ${k.hi ?? "…"}`;
}
function knobRow(k) {
  const row = el("div", { class: "knob", "data-address": k.address });
  const send_ = (value) => { state.sentId += 1; send({ type: "knob", address: k.address, value, id: state.sentId }); };
  let ctl;
  if (k.kind === "bool") {
    ctl = el("input", { type: "checkbox", onchange: (e) => send_(e.target.checked) });
  } else if (k.kind === "choice") {
    ctl = el("select", { onchange: (e) => send_(e.target.value) }, ...k.choices.map((c) => el("option", { value: c }, c)));
  } else if ((k.kind === "float" || k.kind === "int") && k.lo !== null && k.hi !== null) {
    const step = k.kind === "int" ? (k.step || 1) : ((k.hi - k.lo) / 500);
    const num = el("input", { type: "number", min: k.lo, max: k.hi, step });
    const range = el("input", { type: "range", min: k.lo, max: k.hi, step });
    let pending = null;
    const value = (v) => (k.kind === "int" ? parseInt(v, 10) : parseFloat(v));
    range.addEventListener("input", () => {
      num.value = range.value;
      if (pending === null) pending = requestAnimationFrame(() => { pending = null; send_(value(range.value)); });
    });
    num.addEventListener("change", () => { range.value = num.value; send_(value(num.value)); });
    ctl = el("span", { class: "ctl" }, range, num);
    ctl.range = range; ctl.num = num;
  } else if (k.kind === "float" || k.kind === "int") {
    ctl = el("input", { type: "number", step: k.kind === "int" ? 1 : "any",
                        onchange: (e) => send_(k.kind === "int" ? parseInt(e.target.value, 10) : parseFloat(e.target.value)) });
  } else {
    ctl = el("input", { type: "text", maxlength: 2000, onchange: (e) => send_(e.target.value) });
  }
  const learn = el("button", { class: "small learn", title: "MIDI learn: the next control you move binds to this knob",
                               onclick: () => { send({ type: "command", name: "learn", arg: k.address }); learn.classList.add("armed"); } },
                   "learn");
  row.ctl = ctl; row.learn = learn;
  row.append(el("span", { class: "name", title: k.address }, k.key),
             el("span", { class: "ctl" }, ctl), learn,
             el("span", { class: "help" }, `${k.help || ""}${k.help ? " · " : ""}`, el("span", { class: "range" }, rangeText(k))));
  return row;
}
function updateKnobs() {
  for (const row of document.querySelectorAll(".knob")) {
    const v = state.values[row.dataset.address];
    if (v === undefined) continue;
    const c = row.ctl;
    if (c.range) {
      if (document.activeElement !== c.range && document.activeElement !== c.num) { c.range.value = v; c.num.value = v; }
    } else if (document.activeElement === c) { continue; }
    else if (c.type === "checkbox") c.checked = !!v;
    else c.value = v === null ? "" : v;
  }
}
function updateMidi() {
  $("midi-state").textContent = state.midi ? "MIDI in: learn binds the next control you move"
                                           : "no MIDI input (start with --midi to learn)";
  for (const b of document.querySelectorAll(".learn")) {
    b.disabled = !state.midi;
    b.title = state.midi ? "MIDI learn: the next control you move binds to this knob" : "no MIDI input: start the show with --midi";
  }
}

// ---- library -----------------------------------------------------------------------------------
async function loadLibrary() {
  const { presets } = await api("/api/presets");
  const root = $("library");
  root.textContent = "";
  for (const p of presets) {
    const b = el("button", { class: `thumb${p.error ? " broken" : ""}`, "data-name": p.name, title: p.error || p.description || p.name,
                             onclick: () => send({ type: "command", name: "preset", arg: p.name }) },
                 el("img", { alt: "", loading: "lazy", src: p.error ? null : q(`/api/thumb/${p.name}`) }),
                 el("span", {}, p.name));
    root.append(b);
  }
  markCurrent();
}
function markCurrent() {
  for (const b of document.querySelectorAll(".thumb")) b.classList.toggle("current", b.dataset.name === state.preset);
}

// ---- TOML editor -------------------------------------------------------------------------------
const LINE_PX = 18;
async function loadText() {
  try {
    const p = await api("/api/preset");
    $("toml").value = p.text;
    $("editor-name").textContent = `${p.name}.toml`;
    state.editorName = p.name;
    state.dirty = false;
    renderGutter(p.problems);
  } catch (e) { status(e.message, false); }
}
function renderGutter(problems) {
  const text = $("toml").value;
  const n = text.split("\n").length;
  const bad = new Set(problems.map((p) => p.line));
  const g = $("gutter");
  g.textContent = "";
  for (let i = 1; i <= n; i++) {
    g.append(bad.has(i) ? el("span", { class: "bad" }, String(i)) : String(i), "\n");
  }
  g.scrollTop = $("toml").scrollTop;
  const err = $("editor-error");
  if (problems.length) {
    const p = problems[0];
    err.textContent = p.line ? `line ${p.line}: ${p.message}` : p.message;
    err.dataset.line = p.line;
    err.hidden = false;
    placeError();
    status("not valid: the show keeps the last good version", false);
  } else {
    err.hidden = true;
    status(state.dirty ? "valid: save to apply" : "", true);
  }
}
function placeError() {
  const err = $("editor-error");
  const line = parseInt(err.dataset.line || "0", 10) || 1;
  err.style.top = `${8 + line * LINE_PX - $("toml").scrollTop}px`;
}
function status(text, ok) { const s = $("editor-status"); s.textContent = text; s.className = ok ? "dim ok" : "dim bad"; }
function onProblems(m) { if (m.id === state.checkId) renderGutter(m.problems); }
function onEdit() {
  state.dirty = true;
  clearTimeout(onEdit.timer);
  onEdit.timer = setTimeout(() => {
    state.checkId += 1;
    send({ type: "check", name: state.editorName || state.preset, text: $("toml").value, id: state.checkId });
  }, 150);
}
async function save(asNew) {
  let name = state.editorName || state.preset;
  if (asNew) {
    name = prompt("Save as preset named (lower-case letters, digits, - and _):", `${name}-2`);
    if (!name) return;
  }
  try {
    const r = await api(asNew ? "/api/save-as" : "/api/save", { name, text: $("toml").value });
    state.dirty = false;
    status(`saved ${r.saved}${asNew ? " (in your presets folder)" : ": the show reloads it"}`, true);
    if (asNew) loadLibrary();
  } catch (e) { status(e.message, false); toast(e.message); }
}

// ---- scopes ------------------------------------------------------------------------------------
function drawScopes() {
  const s = state.scopes;
  const c = $("scopes");
  const g = c.getContext("2d");
  const W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  g.font = "12px system-ui, sans-serif";
  const label = (t, x, y, color) => { g.fillStyle = color || "#8a90a0"; g.fillText(t, x, y); };
  // spectrum and bands
  const sp = s.spectrum.length ? s.spectrum : new Array(32).fill(0);
  const top = 18, h1 = 130, bw = (W - 90) / sp.length;
  label("spectrum", 8, 13);
  sp.forEach((v, i) => {
    const hh = Math.min(1, v / 3) * h1;
    g.fillStyle = `hsl(${200 + i * 4}, 85%, ${45 + Math.min(1, v / 3) * 20}%)`;
    g.fillRect(8 + i * bw, top + h1 - hh, Math.max(1, bw - 2), hh);
  });
  ["low", "mid", "high"].forEach((name, i) => {
    const v = s.bands[i] || 0, hh = Math.min(1, v / 3) * h1, x = W - 76 + i * 24;
    g.fillStyle = ["#ff5ca8", "#ffc85c", "#42d6ff"][i];
    g.fillRect(x, top + h1 - hh, 18, hh);
    label(name[0].toUpperCase(), x + 5, top + h1 + 13);
  });
  // beat grid: the bar's beats, the phase, downbeats
  const y2 = top + h1 + 34, n = s.beats_per_bar || 4, cell = (W - 16) / n;
  label(`beat ${s.locked ? "locked" : "searching"} · ${s.bpm.toFixed(1)} BPM`, 8, y2 - 6, s.locked ? "#5be39a" : "#8a90a0");
  for (let i = 0; i < n; i++) {
    const on = s.locked && i === s.beat_in_bar;
    g.fillStyle = on ? (i === 0 ? "#ff5ca8" : "#42d6ff") : "#1d2130";
    g.fillRect(8 + i * cell, y2, cell - 6, 26);
    if (i === 0) label("1", 8 + i * cell + 6, y2 + 18, on ? "#140510" : "#ff5ca8");
  }
  g.fillStyle = "#fff";
  g.fillRect(8 + (s.beat_in_bar + s.beat_phase) * cell, y2 - 3, 2, 32);
  // valence / arousal over the last minute, and display fps
  const y3 = y2 + 62, h3 = 120;
  label("valence / arousal · last 60 s", 8, y3 - 6);
  g.strokeStyle = "#262a35"; g.strokeRect(8, y3, W - 16, h3);
  g.beginPath(); g.moveTo(8, y3 + h3 / 2); g.lineTo(W - 8, y3 + h3 / 2); g.stroke();
  const line = (idx, color, scale, offset) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    s.history.forEach((p, j) => {
      const x = W - 8 - (p[0] / 60) * (W - 16), y = y3 + h3 / 2 - ((p[idx] - offset) * scale) * (h3 / 2 - 4);
      if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke(); g.lineWidth = 1;
  };
  line(1, "#ffc85c", 1, 0);
  line(2, "#ff5ca8", 1, 0);
  label("valence", W - 130, y3 + 14, "#ffc85c"); label("arousal", W - 70, y3 + 14, "#ff5ca8");
  const y4 = y3 + h3 + 28, h4 = 70;
  label(`display fps · last 60 s (render ${s.render_fps.toFixed(1)} fps${s.latency_ms !== null ? `, latency ${s.latency_ms.toFixed(0)} ms` : ""})`, 8, y4 - 6);
  g.strokeStyle = "#262a35"; g.strokeRect(8, y4, W - 16, h4);
  g.strokeStyle = "#5be39a"; g.lineWidth = 2; g.beginPath();
  s.history.forEach((p, j) => {
    const x = W - 8 - (p[0] / 60) * (W - 16), y = y4 + h4 - Math.min(1, p[3] / 70) * (h4 - 4);
    if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke(); g.lineWidth = 1;
  // sections (analyzed or scheduled) with the playhead, the schedule's cue, the lyrics ahead
  const y5 = y4 + h4 + 28;
  if (s.sections.length && s.show_t !== null) {
    const end = Math.max(s.sections[s.sections.length - 1] * 1.1, s.show_t + 10), bx = (t) => 8 + (t / end) * (W - 16);
    label("sections", 8, y5 - 6);
    const starts = [0, ...s.sections];
    starts.forEach((t0, i) => {
      const t1 = i + 1 < starts.length ? starts[i + 1] : end;
      g.fillStyle = i % 2 ? "#2b3350" : "#3a2b4a";
      g.fillRect(bx(t0), y5, Math.max(1, bx(t1) - bx(t0) - 2), 16);
    });
    g.fillStyle = "#fff"; g.fillRect(bx(s.show_t), y5 - 3, 2, 22);
  } else {
    label("sections: none (a --schedule keyed by sections draws them here)", 8, y5 + 12);
  }
  const y6 = y5 + 38;
  label(s.cue ? `schedule: ${s.cue}` : "schedule: none", 8, y6, s.cue ? "#e6e8ee" : "#8a90a0");
  label(s.lyric ? `♪ ${s.lyric}` : "", 8, y6 + 18, "#ffc85c");
  s.ahead.forEach((a, i) => label(`in ${a[0].toFixed(1)} s: ${a[1]}`, 8, y6 + 36 + i * 16, "#8a90a0"));
}

// ---- wiring ------------------------------------------------------------------------------------
for (const b of document.querySelectorAll("[data-command]")) {
  b.addEventListener("click", () => send({ type: "command", name: b.dataset.command }));
}
for (const b of document.querySelectorAll("[data-toggle]")) {
  b.addEventListener("click", () => {
    const name = b.dataset.toggle;
    state.toggles[name] = !state.toggles[name];
    b.classList.toggle("active", state.toggles[name]);
    send({ type: "command", name, arg: state.toggles[name] });
  });
}
$("preview-on").addEventListener("change", setPreview);
$("toml").addEventListener("input", onEdit);
$("toml").addEventListener("scroll", () => { $("gutter").scrollTop = $("toml").scrollTop; placeError(); });
$("save").addEventListener("click", () => save(false));
$("save-as").addEventListener("click", () => save(true));
$("reload-text").addEventListener("click", loadText);
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(false); }
});

(async () => {
  try { await loadKnobs(); } catch (e) { toast(`knobs: ${e.message}`); }
  connect();
  loadText();
  loadLibrary().catch((e) => toast(`library: ${e.message}`));
})();
