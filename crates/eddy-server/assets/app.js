// eddy dashboard: polls the HTTP API every second; no build step, no network beyond eddy.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
const COLORS = ["#2f6fde", "#e0803a", "#1f8a4c", "#c8372d", "#8a4fd1", "#14919b", "#b8860b", "#d14f9a", "#5b6b7f", "#6aa84f"];
const SERIES_MAX = COLORS.length;
const CHART_ROWS_MAX = 5000;

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers, ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fillRows(tbody, rows, columns, emptyText) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(emptyText, "empty");
    td.colSpan = columns;
    tr.append(td);
    tbody.append(tr);
    return;
  }
  for (const cells of rows) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    tbody.append(tr);
  }
}

async function refreshStreams() {
  const streams = await api("/api/streams");
  fillRows($("streams"), streams.map((s) => [
    cell(s.name), cell(s.partitions, "num"), cell(fmt.format(s.events), "num"), cell(fmt.format(Math.round(s.rate)), "num"),
  ]), 4, "No streams yet.");
}

async function refreshGroups() {
  const groups = await api("/api/groups");
  fillRows($("groups"), groups.map((g) => [
    cell(g.group), cell(g.stream), cell(g.partition, "num"), cell(fmt.format(g.offset), "num"),
    cell(fmt.format(g.end_offset), "num"), cell(fmt.format(g.lag), "num"),
  ]), 6, "No consumer groups yet.");
}

async function refreshJobs() {
  const jobs = await api("/api/jobs");
  fillRows($("jobs"), jobs.map((j) => {
    const m = j.metrics;
    const state = cell("");
    const badge = document.createElement("span");
    badge.className = `state ${j.state}`;
    badge.textContent = j.state;
    badge.title = j.error || "";
    state.append(badge);
    const lag = Object.values(m.lag || {}).reduce((a, b) => a + b, 0);
    return [
      cell(j.name), state, cell(fmt.format(m.input), "num"), cell(fmt.format(m.output), "num"), cell(fmt.format(m.late), "num"),
      cell(fmt.format(m.out_of_order), "num"), cell(fmt.format(m.dropped), "num"), cell(fmt.format(m.errors), "num"),
      cell(m.watermark ? m.watermark.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—"), cell(fmt.format(lag), "num"),
    ];
  }), 10, "No jobs yet.");
}

// ---- live chart ----

let tables = [];
let plot = null;
let plotKey = "";

function setOptions(select, values, keep, allowNone) {
  const current = keep ?? select.value;
  select.replaceChildren();
  if (allowNone) select.append(new Option("(none)", ""));
  for (const v of values) select.append(new Option(v, v));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

function chartColumns() {
  const table = tables.find((t) => t.name === $("chart-table").value);
  const columns = table ? table.columns : [];
  const byType = (pred) => columns.filter(([, type]) => pred(type)).map(([name]) => name);
  setOptions($("chart-time"), byType((t) => t === "timestamp"));
  setOptions($("chart-value"), byType((t) => t === "bigint" || t === "float"));
  setOptions($("chart-key"), byType((t) => t === "string" || t === "bigint" || t === "bool"), undefined, true);
}

async function refreshTables() {
  tables = await api("/api/tables");
  setOptions($("chart-table"), tables.map((t) => t.name));
  chartColumns();
}

const quote = (name) => `"${name.replaceAll('"', '""')}"`;
// Store timestamps have 7 fractional digits; Date.parse wants at most 3.
const seconds = (iso) => Date.parse(String(iso).replace(/\.(\d{3})\d*/, ".$1")) / 1000;

async function refreshChart() {
  const [table, time, value, key] = ["chart-table", "chart-time", "chart-value", "chart-key"].map((id) => $(id).value);
  if (!table || !time || !value) return;
  const cols = [time, value, key].filter(Boolean).map(quote).join(", ");
  const sql = `SELECT ${cols} FROM ${quote(table)} ORDER BY ${quote(time)} DESC LIMIT ${CHART_ROWS_MAX}`;
  const result = await api("/api/query", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sql }) });
  const series = new Map();
  const times = new Set();
  // Without "Series by", rows that share a time (one per key of a windowed query) are
  // added up and the legend says so, rather than one of them hiding the others.
  const total = `sum of ${value}`;
  let summed = false;
  for (const row of result.rows.reverse()) {
    const t = seconds(row[0]);
    if (!Number.isFinite(t) || typeof row[1] !== "number") continue;
    const name = key ? String(row[2]) : total;
    if (!series.has(name)) {
      if (series.size >= SERIES_MAX) continue;
      series.set(name, new Map());
    }
    const points = series.get(name);
    if (!key && points.has(t)) {
      points.set(t, points.get(t) + row[1]);
      summed = true;
    } else {
      points.set(t, row[1]);
    }
    times.add(t);
  }
  if (!key && !summed && series.has(total)) {
    series.set(value, series.get(total));
    series.delete(total);
  }
  const xs = [...times].sort((a, b) => a - b);
  const names = [...series.keys()].sort();
  const data = [xs, ...names.map((n) => xs.map((x) => series.get(n).get(x) ?? null))];
  const shape = `${table}|${time}|${value}|${key}|${names.join("|")}`;
  if (!plot || shape !== plotKey) {
    if (plot) plot.destroy();
    $("chart").replaceChildren();
    plotKey = shape;
    plot = new uPlot({
      width: $("chart").clientWidth || 900,
      height: 320,
      spanGaps: true,
      series: [{}, ...names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2, points: { size: 4 } }))],
      axes: [{}, { label: value }],
    }, data, $("chart"));
  } else {
    plot.setData(data);
  }
}

for (const id of ["chart-time", "chart-value", "chart-key"]) $(id).addEventListener("change", () => refreshChart().catch(() => {}));
$("chart-table").addEventListener("change", () => { chartColumns(); refreshChart().catch(() => {}); });
window.addEventListener("resize", () => plot && plot.setSize({ width: $("chart").clientWidth, height: 320 }));

// ---- ad-hoc query ----

$("run").addEventListener("click", async () => {
  $("query-error").textContent = "";
  try {
    const result = await api("/api/query", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sql: $("sql").value }) });
    const head = document.createElement("tr");
    head.append(...result.columns.map((c) => { const th = document.createElement("th"); th.textContent = c; return th; }));
    const rows = result.rows.map((r) => { const tr = document.createElement("tr"); tr.append(...r.map((v) => cell(v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v)))); return tr; });
    $("result").replaceChildren(head, ...rows);
  } catch (e) {
    $("query-error").textContent = e.message;
  }
});

// ---- polling ----

let ticks = 0;
async function tick() {
  try {
    if (ticks % 5 === 0) await refreshTables();
    await Promise.all([refreshStreams(), refreshGroups(), refreshJobs(), refreshChart()]);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("status").classList.remove("down");
  } catch (e) {
    $("status").textContent = `error: ${e.message}`;
    $("status").classList.add("down");
  }
  ticks += 1;
  setTimeout(tick, 1000);
}
tick();
