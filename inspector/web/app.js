// The inspector page: polls /inspector/api every second and draws the selected pipeline as an SVG
// graph. Counters arrive as totals; rates are differences between two readings.
"use strict";

const api = "api/";
const NODE_W = 250, NODE_H = 132, GAP_X = 110, GAP_Y = 36, MARGIN = 30;
const svgNS = "http://www.w3.org/2000/svg";

let selectedPipeline = null; // pipeline id shown
let selectedElement = null;  // element id whose details are shown
let previous = null;         // last reading of the pipeline, for rates

async function getJSON(path) {
  const r = await fetch(api + path, { cache: "no-store" });
  if (!r.ok) throw new Error(r.status + " " + (await r.text()));
  return r.json();
}

function make(e, attrs, text) {
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function el(tag, attrs, text) { return make(document.createElement(tag), attrs, text); }
function svg(tag, attrs, text) { return make(document.createElementNS(svgNS, tag), attrs, text); }

// ---- lists -------------------------------------------------------------------------------------

async function refreshOverview() {
  const o = await getJSON("overview");
  const pl = document.getElementById("pipelines");
  pl.replaceChildren(...o.pipelines.map(p => {
    const li = el("li", { "data-id": p.id, class: p.id === selectedPipeline ? "selected" : "" });
    li.append(p.id, el("small", {}, p.elements + " elements, " + p.sessions.length + " session(s)"));
    li.onclick = () => select(p.id, null);
    return li;
  }));
  if (o.pipelines.length === 0) pl.append(el("li", {}, "none"));
  const sl = document.getElementById("sessions");
  sl.replaceChildren(...o.sessions.map(s => {
    const held = o.pipelines.filter(p => p.sessions.includes(s)).map(p => p.id);
    const li = el("li", {}, s);
    li.append(el("small", {}, held.length ? "holds " + held.join(", ") : "holds no pipeline"));
    if (held.length) li.onclick = () => select(held[0], null);
    return li;
  }));
  if (o.sessions.length === 0) sl.append(el("li", {}, "none"));
  if (!selectedPipeline && o.pipelines.length === 1) select(o.pipelines[0].id, null);
}

function select(pipeline, element) {
  if (pipeline !== selectedPipeline) previous = null;
  selectedPipeline = pipeline;
  selectedElement = element;
  for (const li of document.querySelectorAll("#pipelines li")) li.classList.toggle("selected", li.dataset.id === pipeline);
  refreshPipeline();
}

// ---- figures -----------------------------------------------------------------------------------

function kbps(bytesNow, bytesBefore, ms) {
  if (bytesBefore === undefined || ms <= 0) return null;
  return Math.max(0, (bytesNow - bytesBefore) * 8 / ms); // bits per ms = kbps
}

function fmtRate(v) { return v === null ? "…" : v >= 1000 ? (v / 1000).toFixed(2) + " Mbps" : v.toFixed(0) + " kbps"; }

function figures(e, before, ms) {
  const f = {};
  f.bitrateIn = kbps(e.bytesIn, before && before.bytesIn, ms);
  f.bitrateOut = kbps(e.bytesOut, before && before.bytesOut, ms);
  let recv = 0, lost = 0, rtt = 0;
  for (const s of e.streams || []) {
    if (s.direction === "in") { recv += s.packets; lost += Math.max(0, s.packetsLost); }
    if (s.rtt) rtt = Math.max(rtt, s.rtt);
  }
  f.loss = recv + lost > 0 ? (100 * lost / (recv + lost)).toFixed(1) + "%" : null;
  f.rtt = rtt > 0 ? (rtt * 1000).toFixed(0) + " ms" : null;
  return f;
}

function figureLines(e, f) {
  const lines = [
    ["bitrateIn", "in " + fmtRate(f.bitrateIn)],
    ["bitrateOut", "out " + fmtRate(f.bitrateOut)],
    ["flowing", "flowing in " + (e.flowingIn ? "yes" : "no") + ", out " + (e.flowingOut ? "yes" : "no")],
  ];
  if (e.streams && e.streams.length) lines.push(["quality", "loss " + (f.loss || "0%") + (f.rtt ? ", RTT " + f.rtt : "")]);
  if (e.connectionState) lines.push(["state", "connection " + e.connectionState.toLowerCase() + ", media " + e.mediaState.toLowerCase()]);
  if (e.recordedBytes) lines.push(["recorded", "recorded " + (e.recordedBytes / 1024).toFixed(0) + " KiB"]);
  if (e.droppedForLag) lines.push(["dropped", "dropped for lag " + e.droppedForLag + " packets"]);
  for (const t of e.transcoders || []) lines.push(["transcoder", "transcoding " + t.from + " → " + t.to]);
  return lines;
}

// ---- graph -------------------------------------------------------------------------------------

// layout places elements in columns by their distance from the elements nothing feeds.
function layout(p) {
  const rank = {};
  for (const e of p.elements) rank[e.id] = 0;
  for (let i = 0; i < p.elements.length; i++) {
    for (const l of p.links) {
      if (l.source !== l.sink && rank[l.sink] < rank[l.source] + 1 && rank[l.source] + 1 < p.elements.length) rank[l.sink] = rank[l.source] + 1;
    }
  }
  const rows = {}, pos = {};
  for (const e of p.elements) {
    const c = rank[e.id], r = rows[c] = (rows[c] || 0) + 1;
    pos[e.id] = { x: MARGIN + c * (NODE_W + GAP_X), y: MARGIN + 20 + (r - 1) * (NODE_H + GAP_Y) };
  }
  return pos;
}

// edges merges the links between two elements (audio and video, several pads) into one edge.
function edges(p) {
  const m = new Map();
  for (const l of p.links) {
    const k = l.source + "\n" + l.sink;
    if (!m.has(k)) m.set(k, { source: l.source, sink: l.sink, labels: [] });
    m.get(k).labels.push(l.media + (l.codec ? " " + l.codec : "") + (l.sourcePad !== "default" || l.sinkPad !== "default" ? " (" + l.sourcePad + "→" + l.sinkPad + ")" : ""));
  }
  return [...m.values()];
}

function draw(p) {
  const g = document.getElementById("graph");
  const pos = layout(p);
  let w = 400, h = 200;
  for (const v of Object.values(pos)) { w = Math.max(w, v.x + NODE_W + MARGIN); h = Math.max(h, v.y + NODE_H + MARGIN); }
  g.setAttribute("width", w); g.setAttribute("height", h);
  g.replaceChildren(svg("defs", {}));
  g.firstChild.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4a6a8a"/></marker>';
  const ms = previous ? p.time - previous.time : 0;
  const before = {};
  if (previous) for (const e of previous.elements) before[e.id] = e;

  for (const ed of edges(p)) {
    const a = pos[ed.source], b = pos[ed.sink];
    if (!a || !b) continue;
    let d, lx, ly;
    if (ed.source === ed.sink) {
      d = `M${a.x + NODE_W - 40},${a.y} C${a.x + NODE_W - 20},${a.y - 45} ${a.x + 40},${a.y - 45} ${a.x + 60},${a.y}`;
      lx = a.x + NODE_W / 2 - 40; ly = a.y - 38;
    } else {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      d = `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}`;
      lx = x1 + 6; ly = Math.min(y1, y2) - 8 + (y1 === y2 ? 0 : Math.abs(y2 - y1) / 2);
    }
    g.append(svg("path", { class: "link", d, "marker-end": "url(#arrow)", "data-source": ed.source, "data-sink": ed.sink }));
    ed.labels.forEach((t, i) => g.append(svg("text", { class: "link-label", x: lx, y: ly - 12 * (ed.labels.length - 1 - i) }, t)));
  }

  for (const e of p.elements) {
    const at = pos[e.id], f = figures(e, before[e.id], ms);
    const cls = ["node", e.flowingIn || e.flowingOut ? "flowing" : "", e.lastError ? "error" : "", e.id === selectedElement ? "selected" : ""].join(" ");
    const n = svg("g", { class: cls, "data-id": e.id, "data-class": e.class, transform: `translate(${at.x},${at.y})` });
    n.append(svg("rect", { width: NODE_W, height: NODE_H }));
    n.append(svg("text", { class: "class", x: 10, y: 18 }, e.class));
    n.append(svg("text", { class: "id", x: 10, y: 31 }, e.id.length > 40 ? "…" + e.id.slice(-39) : e.id));
    let y = 48;
    for (const [key, text] of figureLines(e, f)) {
      if (y > NODE_H - 18) break;
      n.append(svg("text", { class: "fig", "data-fig": key, x: 10, y }, text));
      y += 14;
    }
    if (e.lastError) n.append(svg("text", { class: "err", x: 10, y: NODE_H - 8 }, "error: " + e.lastError.slice(0, 38)));
    n.onclick = () => { selectedElement = e.id; draw(p); showDetails(p); };
    n.style.cursor = "pointer";
    g.append(n);
  }
}

// ---- details -----------------------------------------------------------------------------------

function table(headers, rows) {
  const t = el("table");
  const tr = el("tr");
  for (const h of headers) tr.append(el("th", {}, h));
  t.append(tr);
  for (const r of rows) {
    const row = el("tr");
    for (const c of r) row.append(el("td", {}, c === undefined || c === null ? "" : String(c)));
    t.append(row);
  }
  return t;
}

function showDetails(p) {
  const d = document.getElementById("details");
  const e = p.elements.find(x => x.id === selectedElement);
  if (!e) { d.replaceChildren(); return; }
  const parts = [el("h3", {}, e.class + " " + e.id)];
  if (e.parent) parts.push(el("p", {}, "port of " + e.parent));
  if (e.lastError) parts.push(el("p", { class: "err" }, "last error: " + e.lastError));
  parts.push(el("h4", {}, "Source pads"), table(["media", "pad", "codec", "packets", "bytes", "flowing"],
    e.pads.map(x => [x.media, x.name, x.codec, x.packets, x.bytes, x.flowing ? "yes" : "no"])));
  if (e.streams && e.streams.length) parts.push(el("h4", {}, "RTP streams with the peer"),
    table(["direction", "media", "codec", "packets", "bytes", "lost", "NACKs", "PLIs", "RTT ms", "jitter ms", "retransmitted"],
      e.streams.map(s => [s.direction, s.media, s.codec, s.packets, s.bytes, s.packetsLost, s.nacks, s.plis,
        s.rtt ? (s.rtt * 1000).toFixed(1) : "", s.jitter ? (s.jitter * 1000).toFixed(1) : "", s.retransmits || ""])));
  if (e.transcoders && e.transcoders.length) parts.push(el("h4", {}, "Transcoders"),
    table(["media", "from", "to", "bin"], e.transcoders.map(t => [t.media, t.from, t.to, t.bin])));
  const dotBox = el("div", { class: "dot" });
  const btn = el("button", {}, "Show GStreamer DOT");
  btn.onclick = () => showDot(e.id, dotBox);
  parts.push(el("h4", {}, "GStreamer"), btn, dotBox);
  d.replaceChildren(...parts);
}

async function showDot(id, box) {
  box.replaceChildren(el("p", {}, "loading…"));
  const r = await fetch(api + "dot/" + encodeURIComponent(id) + "?format=svg", { cache: "no-store" });
  const text = await r.text();
  if (!r.ok) { box.replaceChildren(el("p", {}, text)); return; }
  if ((r.headers.get("Content-Type") || "").startsWith("image/svg")) {
    box.innerHTML = text.slice(text.indexOf("<svg"));
  } else {
    box.replaceChildren(el("pre", {}, text));
  }
}

// ---- polling -----------------------------------------------------------------------------------

async function refreshPipeline() {
  if (!selectedPipeline) return;
  let p;
  try {
    p = await getJSON("pipelines/" + encodeURIComponent(selectedPipeline));
  } catch (err) {
    document.getElementById("title").textContent = "Pipeline " + selectedPipeline + " is gone";
    document.getElementById("graph").replaceChildren();
    selectedPipeline = null;
    return;
  }
  document.getElementById("title").textContent = "Pipeline " + p.id + " (" + p.elements.length + " elements)";
  draw(p);
  if (selectedElement) showDetails(p);
  previous = p;
}

document.getElementById("search").onsubmit = async ev => {
  ev.preventDefault();
  const id = document.getElementById("search-id").value.trim();
  const out = document.getElementById("search-result");
  if (!id) return;
  try {
    const f = await getJSON("objects/" + encodeURIComponent(id));
    out.textContent = f.class + (f.pipeline ? " in " + f.pipeline : "");
    if (f.pipeline) select(f.pipeline, f.id === f.pipeline ? null : f.id);
  } catch (err) {
    out.textContent = "not found";
  }
};

async function tick() {
  try {
    await refreshOverview();
    await refreshPipeline();
  } catch (err) {
    document.getElementById("title").textContent = "server unreachable: " + err.message;
  }
  setTimeout(tick, 1000);
}
tick();
