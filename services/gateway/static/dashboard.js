// The live dashboard: polls GET /api/overview once a second and draws what it gets.
// No library: the charts are a few lines of <canvas>, so the page works offline.
"use strict";

const params = new URLSearchParams(window.location.search);
const POLL_MS = Math.max(250, Number(params.get("interval_ms")) || 1000);
const HISTORY_S = 120;
const PALETTE = ["#5fb3f9", "#f7b955", "#7ad67a", "#ef6b73", "#b48ef0", "#4fd1c5",
                 "#f28fc5", "#c2c26a", "#f59a5c", "#8fa9f7"];
const QUEUE_COLORS = { jobs: "#5fb3f9", results: "#7ad67a", retry: "#f7b955", dead: "#ef6b73" };
const DONE_FIELD = { worker: "completed", aggregator: "folded", gateway: "accepted_jobs" };

const state = {
  colors: new Map(),      // instance -> colour, stable while the page lives
  previous: new Map(),    // instance -> {done, lastSeen, rate}
  series: {               // chart -> name -> [{t, v}]
    throughput: new Map(), lag: new Map(), queues: new Map(), batches: new Map(),
  },
  polls: 0,
};

function colorFor(name) {
  if (!state.colors.has(name)) {
    state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
  }
  return state.colors.get(name);
}

function push(chart, name, t, v) {
  const series = state.series[chart];
  if (!series.has(name)) series.set(name, []);
  const points = series.get(name);
  points.push({ t, v });
  while (points.length && points[0].t < t - HISTORY_S) points.shift();
}

function forget(chart, liveNames) {
  for (const name of state.series[chart].keys()) {
    if (!liveNames.has(name)) state.series[chart].delete(name);
  }
}

// Jobs per second from two successive heartbeats of one instance: the change of its
// counter over the change of its own clock, so a late poll does not distort the figure.
// A restarted instance (another pid under the same name) starts its rate afresh.
function rateOf(entry) {
  const done = Number(entry[DONE_FIELD[entry.service]] ?? 0);
  const lastSeen = Number(entry.last_seen);
  const known = state.previous.get(entry.instance);
  const prev = known && known.pid === entry.pid ? known : undefined;
  let rate = prev ? prev.rate : null;
  if (prev && lastSeen > prev.lastSeen) {
    rate = done >= prev.done ? (done - prev.done) / (lastSeen - prev.lastSeen) : 0;
  }
  if (!prev || lastSeen > prev.lastSeen) {
    state.previous.set(entry.instance, { done, lastSeen, rate, pid: entry.pid });
  }
  return { done, rate };
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function lagClass(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms >= 100) return "bad";
  if (ms >= 20) return "warn";
  return "";
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function cell(row, field, text, cls = "") {
  const td = document.createElement("td");
  td.dataset.field = field;
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function renderTable(instances, rates) {
  const body = document.querySelector("#instances tbody");
  body.replaceChildren();
  for (const entry of instances) {
    const row = document.createElement("tr");
    row.dataset.instance = entry.instance;
    row.dataset.service = entry.service;
    if (entry.stale) row.className = "stale";
    const recent = entry.loop_lag_recent_ms || {};
    const ever = entry.loop_lag_ms || {};
    const isWorker = entry.service === "worker";
    const pool = isWorker
      ? (entry.mode === "blocking" ? `${entry.pool_busy ?? 0} / loop` : `${entry.pool_busy ?? 0} / ${entry.pool_size}`)
      : "";
    cell(row, "instance", entry.instance);
    cell(row, "service", entry.service);
    cell(row, "mode", entry.mode || "");
    cell(row, "pool", pool);
    cell(row, "in_flight", isWorker ? fmt(entry.in_flight, 0) : (entry.pending ?? entry.waiting_requests ?? ""));
    cell(row, "done", fmt(rates.get(entry.instance).done, 0));
    cell(row, "rate", fmt(rates.get(entry.instance).rate, 1));
    cell(row, "lag_p50", fmt(recent.p50, 1), lagClass(recent.p50));
    cell(row, "lag_p99", fmt(recent.p99, 1), lagClass(recent.p99));
    cell(row, "lag_max", fmt(recent.max, 1), lagClass(recent.max));
    cell(row, "lag_max_ever", fmt(ever.max_since_start, 1), lagClass(ever.max_since_start));
    cell(row, "metrics_port", entry.metrics_port ? String(entry.metrics_port) : "off");
    cell(row, "seen", `${fmt(entry.age_s, 1)} s ago`);
    body.appendChild(row);
  }
}

// Round gridlines: a step of 1, 2, 2.5 or 5 times a power of ten, three to five of them.
function niceScale(highest) {
  if (!(highest > 0)) return { max: 1, step: 0.25 };
  const raw = highest / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  return { max: Math.ceil(highest / step) * step, step };
}

// A line chart of the last HISTORY_S seconds: one line per series, y from 0 to a round max.
function drawChart(canvasId, legendId, series, colorOf, now) {
  const canvas = document.getElementById(canvasId);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = { left: 48, right: 8, top: 8, bottom: 20 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  let highest = 0;
  for (const points of series.values()) {
    for (const p of points) if (p.v !== null && p.v > highest) highest = p.v;
  }
  const scale = niceScale(highest);
  const yMax = scale.max;
  const x = (t) => pad.left + plotW * (1 - (now - t) / HISTORY_S);
  const y = (v) => pad.top + plotH * (1 - v / yMax);

  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#2a3541";
  ctx.fillStyle = "#7d8b99";
  ctx.lineWidth = 1;
  for (let v = 0; v <= yMax + scale.step / 2; v += scale.step) {
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, yy);
    ctx.lineTo(width - pad.right, yy);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(fmt(v, Number.isInteger(scale.step) ? 0 : 2), pad.left - 6, yy + 4);
  }
  for (const ago of [120, 90, 60, 30, 0]) {
    ctx.textAlign = ago === HISTORY_S ? "left" : ago === 0 ? "right" : "center";
    ctx.fillText(ago ? `-${ago}s` : "now", x(now - ago), height - 5);
  }

  ctx.lineWidth = 2;
  for (const [name, points] of series) {
    ctx.strokeStyle = colorOf(name);
    ctx.beginPath();
    let drawing = false;
    for (const p of points) {
      if (p.v === null) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(p.t), y(p.v));
      else ctx.moveTo(x(p.t), y(p.v));
      drawing = true;
    }
    ctx.stroke();
  }

  const legend = document.getElementById(legendId);
  legend.replaceChildren();
  for (const [name, points] of series) {
    const last = points.length ? points[points.length - 1].v : null;
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colorOf(name);
    item.append(swatch, `${name} ${fmt(last, 1)}`);
    legend.appendChild(item);
  }
}

function render(overview) {
  const now = overview.now;
  const rates = new Map();
  for (const entry of overview.instances) rates.set(entry.instance, rateOf(entry));

  const liveWorkers = overview.instances.filter((e) => e.service === "worker" && !e.stale);
  const workerNames = new Set(liveWorkers.map((e) => e.instance));
  let totalRate = 0;
  let totalDone = 0;
  let worstLag = null;
  for (const entry of overview.instances.filter((e) => e.service === "worker")) {
    totalDone += rates.get(entry.instance).done;
  }
  for (const entry of liveWorkers) {
    const { rate } = rates.get(entry.instance);
    const lag = (entry.loop_lag_recent_ms || {}).p99 ?? null;
    totalRate += rate || 0;
    if (lag !== null && (worstLag === null || lag > worstLag)) worstLag = lag;
    push("throughput", entry.instance, now, rate);
    push("lag", entry.instance, now, lag);
  }
  forget("throughput", workerNames);
  forget("lag", workerNames);
  for (const [queue, depth] of Object.entries(overview.queues)) {
    push("queues", queue, now, depth < 0 ? null : depth);
  }
  push("batches", "running", now, overview.batches_in_flight);

  setText("namespace", `namespace ${overview.namespace}`);
  setText("workers-live", String(liveWorkers.length));
  setText("total-rate", fmt(totalRate, 1));
  setText("total-completed", fmt(totalDone, 0));
  setText("queue-jobs", fmt(overview.queues.jobs, 0));
  setText("batches-in-flight", fmt(overview.batches_in_flight, 0));
  setText("worst-lag", fmt(worstLag, 1));
  document.getElementById("worst-lag").className = `value ${lagClass(worstLag)}`;
  renderTable(overview.instances, rates);

  const instanceColor = (name) => colorFor(name);
  drawChart("chart-throughput", "legend-throughput", state.series.throughput, instanceColor, now);
  drawChart("chart-lag", "legend-lag", state.series.lag, instanceColor, now);
  drawChart("chart-queues", "legend-queues", state.series.queues, (q) => QUEUE_COLORS[q] || "#ccc", now);
  drawChart("chart-batches", "legend-batches", state.series.batches, () => "#b48ef0", now);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const key = window.sessionStorage.getItem("coord-api-key");
    const headers = key ? { "X-API-Key": key } : {};
    const answer = await fetch("/api/overview", { cache: "no-store", headers });
    if (answer.status === 401) {
      // The gateway has COORD_API_KEY set: ask once per tab, keep it for this session only.
      const given = window.prompt("This gateway needs its API key (X-API-Key):");
      if (given) window.sessionStorage.setItem("coord-api-key", given);
    }
    if (!answer.ok) throw new Error(`gateway answered ${answer.status}`);
    render(await answer.json());
    state.polls += 1;
    status.className = "status";
    status.textContent = `updated ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
    status.dataset.polls = String(state.polls);
  } catch (error) {
    status.className = "status bad";
    status.textContent = `no data: ${error.message}`;
  } finally {
    window.setTimeout(poll, POLL_MS);
  }
}

poll();
