// The Swarm dashboard: polls /api/state once a second and redraws. No framework, no network
// beyond this orchestrator. With authentication on, the admin token is asked for once and kept
// in localStorage; every API call sends it as `Authorization: Bearer`.
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "swarm.token";

function headers() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path) {
  const resp = await fetch(path, { headers: headers(), cache: "no-store" });
  if (resp.status === 401 || resp.status === 403) {
    $("login").hidden = false;
    $("main").hidden = true;
    $("login-error").textContent = resp.status === 403 ? "that token is not an admin token" : "";
    throw new Error("unauthorized");
  }
  return resp;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function fill(tableId, rows, draw) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  for (const r of rows) draw(body.insertRow(), r);
}

function line(svgId, values) {
  const svg = $(svgId);
  svg.replaceChildren();
  const pts = values.filter((v) => v !== null);
  if (values.length < 2 || pts.length === 0) return;
  const max = Math.max(...pts, 1e-9);
  const step = 600 / (values.length - 1);
  const coords = [];
  values.forEach((v, i) => { if (v !== null) coords.push(`${(i * step).toFixed(1)},${(115 - (v / max) * 110).toFixed(1)}`); });
  const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  poly.setAttribute("points", coords.join(" "));
  svg.appendChild(poly);
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", "4"); label.setAttribute("y", "12"); label.setAttribute("font-size", "11");
  label.textContent = "max " + max.toFixed(max < 10 ? 2 : 0);
  svg.appendChild(label);
}

function rates(series) {
  const out = [];
  for (let i = 1; i < series.length; i++) {
    const a = series[i - 1], b = series[i], dt = b.t - a.t;
    const done = (b.succeeded - a.succeeded) + (b.failed - a.failed) + (b.cancelled - a.cancelled);
    out.push(dt > 0 ? done / dt : 0);
  }
  return out;
}

const ms = (s) => (s === null || s === undefined ? "-" : (s * 1000).toFixed(1));

function draw(s) {
  $("conn").textContent = "live";
  $("uptime").textContent = "up " + Math.round(s.uptime_s) + " s";
  $("throughput").textContent = s.throughput_per_s.toFixed(1);
  const last = [...s.series].reverse().find((p) => p.latency_p50_s !== null);
  $("latency").textContent = last ? ms(last.latency_p50_s) + " / " + ms(last.latency_p95_s) : "-";
  $("queued").textContent = s.tasks.queued;
  $("running").textContent = s.tasks.running + s.tasks.assigned;
  $("finished").textContent = s.tasks.succeeded + " / " + s.tasks.failed;
  $("hosts-lost").textContent = s.hosts_lost;
  line("chart-throughput", rates(s.series));
  line("chart-latency", s.series.map((p) => (p.latency_p95_s === null ? null : p.latency_p95_s * 1000)));
  fill("hosts", s.hosts, (row, h) => {
    row.className = "host state-" + h.state;
    row.dataset.host = h.id;
    for (const v of [h.id, h.state, h.agents, h.inflight, h.running, h.free, h.loop_lag_ms.toFixed(1),
      h.cpu_percent.toFixed(0), (h.rss_bytes / 1048576).toFixed(0), h.done, h.kinds.join(", ")]) cell(row, v);
  });
  const served = new Set(s.kinds_served);
  const queues = s.queues.slice();
  for (const k of served) if (!queues.some((q) => q.kind === k)) queues.push({ kind: k, queued: 0, unserved: false });
  fill("queues", queues, (row, q) => {
    cell(row, q.kind);
    cell(row, q.queued);
    cell(row, q.unserved ? "no host serves it" : "yes", q.unserved ? "bad" : "good");
  });
  const failures = $("failures");
  // Redrawn every poll: a traceback the reader opened stays open.
  const opened = new Set([...failures.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  failures.replaceChildren();
  if (s.failures.length === 0) failures.textContent = "none";
  for (const f of s.failures) {
    const d = document.createElement("details");
    d.dataset.key = `${f.namespace}/${f.id}`;
    d.open = opened.has(d.dataset.key);
    const sum = document.createElement("summary");
    sum.textContent = `${new Date(f.at * 1000).toLocaleTimeString()}  ${f.id} (${f.kind}) ${f.error.reason}: ${f.error.type}: ${f.error.message}`;
    const pre = document.createElement("pre");
    pre.textContent = f.error.traceback || "(no traceback)";
    d.append(sum, pre);
    failures.appendChild(d);
  }
  fill("losses", s.losses, (row, e) => {
    for (const v of [new Date(e.at * 1000).toLocaleTimeString(), e.host_id, e.pid, e.silent_s.toFixed(2), e.reason, e.tasks_done]) cell(row, v);
  });
}

async function poll() {
  try {
    const resp = await api("/api/state");
    if (resp.ok) { $("login").hidden = true; $("main").hidden = false; draw(await resp.json()); }
  } catch (err) {
    if (err.message !== "unauthorized") $("conn").textContent = "disconnected";
  }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("token").value.trim());
  poll();
});

$("lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("task-id").value.trim();
  if (!id) return;
  const ns = $("task-ns").value.trim();
  const q = "id=" + encodeURIComponent(id) + (ns ? "&namespace=" + encodeURIComponent(ns) : "");
  try {
    const resp = await api("/api/task?" + q);
    $("task-result").textContent = resp.ok ? JSON.stringify(await resp.json(), null, 2) : "no such task: " + id;
  } catch (err) { /* the login form is showing */ }
});

poll();
setInterval(poll, 1000);
