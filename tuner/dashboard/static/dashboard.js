// tuner dashboard: every page draws itself from the JSON API and redraws when the database
// changes (polling /api/version). User text only ever reaches the DOM through textContent.
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs) || 2000;
const BOOT = JSON.parse(document.getElementById("boot").textContent || "{}");
const PAGE_SIZE = 50;

// plotly.min.js is large (megabytes to parse): it loads while the page fetches its data,
// instead of before, and a chart waits for it only when it is about to be drawn.
const plotlyReady = !document.body.dataset.plotly ? Promise.resolve() : new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = document.body.dataset.plotly;
  script.onload = resolve;
  script.onerror = () => reject(new Error("plotly.min.js did not load"));
  document.head.append(script);
});

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

function query(params) {
  return new URLSearchParams(params).toString();
}

async function api(path, params) {
  const response = await fetch(path + (params ? "?" + query(params) : ""), { cache: "no-store" });
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  return String(value);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(seconds);
  if (s < 120) return s + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  return (s / 3600).toFixed(1) + "h";
}

function setLive(ok) {
  document.getElementById("live").classList.toggle("stale", !ok);
}

function poll(check) {
  // One look at a time: a slow database never stacks requests.
  async function tick() {
    try {
      await check();
      setLive(true);
    } catch (e) {
      setLive(false);
    }
    setTimeout(tick, POLL_MS);
  }
  setTimeout(tick, POLL_MS);
}

function summaryList(dl, pairs) {
  dl.replaceChildren();
  for (const [label, value] of pairs) {
    dl.append(el("dt", label));
    const dd = el("dd");
    if (value instanceof Node) dd.append(value); else dd.textContent = fmt(value);
    dl.append(dd);
  }
}

// -- experiments list ---------------------------------------------------------------------

async function experimentsPage() {
  const status = document.getElementById("filter-status");
  const namespace = document.getElementById("filter-namespace");
  const params = new URLSearchParams(location.search);
  status.value = params.get("status") || "";

  async function load() {
    const filters = {};
    if (status.value) filters.status = status.value;
    if (namespace.value) filters.namespace = namespace.value;
    const data = await api("/api/experiments", filters);
    const known = new Set([...namespace.options].map((o) => o.value));
    for (const ns of data.namespaces) {
      if (!known.has(ns)) namespace.append(new Option(ns, ns));
    }
    const body = document.querySelector("#experiments tbody");
    body.replaceChildren(...data.experiments.map(experimentRow));
    document.getElementById("experiments-empty").hidden = data.experiments.length > 0;
  }
  status.addEventListener("change", load);
  namespace.addEventListener("change", load);
  await load();
  poll(load);
}

function experimentRow(e) {
  const tr = el("tr");
  tr.dataset.name = e.name;
  const name = el("td");
  name.append(link("/experiments/" + encodeURIComponent(e.name), e.name));
  const counts = Object.entries(e.trials).map(([s, n]) => s + " " + n).join(", ");
  tr.append(
    name,
    el("td", e.namespace),
    el("td", e.status, "status-" + e.status),
    el("td", e.reason),
    el("td", e.total + (counts ? " (" + counts + ")" : "")),
    el("td", e.best === null ? "" : e.metric + " = " + fmt(e.best), "num"),
    el("td", e.algorithm),
    el("td", e.startedAt),
    el("td", duration(e.durationSeconds), "num"),
  );
  return tr;
}

// -- experiment page ----------------------------------------------------------------------

const table = { columns: [], rows: [], sortBy: null, descending: false, page: 0 };

async function experimentPage() {
  const name = BOOT.experiment;
  document.getElementById("download").href = "/api/trials.csv?" + query({ experiment: name });
  for (const id of ["trial-filter", "trial-status"]) {
    document.getElementById(id).addEventListener("input", () => { table.page = 0; drawTable(); });
  }
  document.getElementById("page-prev").addEventListener("click", () => { table.page--; drawTable(); });
  document.getElementById("page-next").addEventListener("click", () => { table.page++; drawTable(); });
  let version = null;

  async function load() {
    // The first chart is asked for and drawn at once, beside the table (it is what a user
    // looks at first); the others follow one by one.
    const firstDrawn = fetchFigure(name, BOOT.figures[0]).then((a) => drawFigure(BOOT.figures[0], a));
    const [exp, trials] = await Promise.all([
      api("/api/experiment", { name }),
      api("/api/trials", { experiment: name }),
    ]);
    version = exp.version;
    drawSummary(exp.summary);
    table.columns = trials.columns;
    table.rows = trials.rows;
    table.best = exp.summary.bestTrial;
    drawTable();
    // The first chart first: it is the one a user looks at while the others are drawn.
    await firstDrawn;
    // The others are asked for together and each drawn as it comes: the quick ones need not
    // wait behind fANOVA's importances or Optuna's parallel coordinates (seconds each).
    await Promise.all(BOOT.figures.slice(1).map(
      (kind) => fetchFigure(name, kind).then((a) => drawFigure(kind, a))));
    // What the page shows now, for whoever waits for it (the browser tests).
    document.body.dataset.drawn = String(table.rows.length);
  }
  await load();
  poll(async () => {
    const now = await api("/api/version", { experiment: name });
    if (now.version !== version) await load();
  });
}

function drawSummary(s) {
  const best = s.bestTrial === null ? "" : link("/trials/" + encodeURIComponent(s.bestTrial),
    s.metric + " = " + fmt(s.best) + " (" + s.bestTrial + ")");
  const counts = Object.entries(s.trials).map(([k, n]) => k + " " + n).join(", ");
  const status = el("span", s.status, "status-" + s.status);
  summaryList(document.getElementById("summary"), [
    ["Status", status], ["Reason", s.reason], ["Namespace", s.namespace],
    ["Objective", s.goal + " " + s.metric], ["Algorithm", s.algorithm], ["Best", best],
    ["Trials", s.total + (counts ? " (" + counts + ")" : "")], ["Started", s.startedAt],
    ["Duration", duration(s.durationSeconds)],
  ]);
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined || a === "") return 1;
  if (b === null || b === undefined || b === "") return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function drawTable() {
  const statusColumn = table.columns.indexOf("status");
  const statusSelect = document.getElementById("trial-status");
  const statuses = new Set(table.rows.map((r) => r[statusColumn]));
  const known = new Set([...statusSelect.options].map((o) => o.value));
  for (const s of statuses) if (!known.has(s)) statusSelect.append(new Option(s, s));

  const head = document.querySelector("#trials thead tr");
  head.replaceChildren(...table.columns.map((c, i) => {
    const th = el("th", c + (table.sortBy === i ? (table.descending ? " ▼" : " ▲") : ""));
    th.addEventListener("click", () => {
      table.descending = table.sortBy === i ? !table.descending : false;
      table.sortBy = i;
      drawTable();
    });
    return th;
  }));

  const needle = document.getElementById("trial-filter").value.toLowerCase();
  const wanted = statusSelect.value;
  let rows = table.rows.filter((r) =>
    (!wanted || r[statusColumn] === wanted) &&
    (!needle || r.some((v) => v !== null && String(v).toLowerCase().includes(needle))));
  if (table.sortBy !== null) {
    const i = table.sortBy;
    rows = rows.slice().sort((a, b) => (table.descending ? -1 : 1) * compare(a[i], b[i]));
    // Empty cells stay last in both directions.
    rows.sort((a, b) => (a[i] === null || a[i] === "") - (b[i] === null || b[i] === ""));
  }
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  table.page = Math.min(Math.max(0, table.page), pages - 1);
  const shown = rows.slice(table.page * PAGE_SIZE, (table.page + 1) * PAGE_SIZE);
  const body = document.querySelector("#trials tbody");
  body.replaceChildren(...shown.map((r) => {
    const tr = el("tr");
    tr.dataset.name = r[0];
    if (r[0] === table.best) tr.className = "best";
    r.forEach((v, i) => {
      const td = el("td", i === 0 ? null : fmt(v), typeof v === "number" ? "num" : "");
      if (i === 0) td.append(link("/trials/" + encodeURIComponent(v), v));
      tr.append(td);
    });
    return tr;
  }));
  document.getElementById("trial-count").textContent =
    rows.length + " of " + table.rows.length + " trials";
  document.getElementById("page-info").textContent = "page " + (table.page + 1) + " / " + pages;
  document.getElementById("page-prev").disabled = table.page === 0;
  document.getElementById("page-next").disabled = table.page >= pages - 1;
}

const PLOT_CONFIG = { displaylogo: false, responsive: true };

async function fetchFigure(name, kind) {
  try {
    return await api("/api/figure", { experiment: name, kind });
  } catch (e) {
    return { unavailable: "could not be drawn: " + e.message };
  }
}

async function drawFigure(kind, answer) {
  const div = document.getElementById("fig-" + kind);
  const note = div.parentElement.querySelector(".unavailable");
  await plotlyReady;
  const caption = div.parentElement.querySelector("figcaption");
  caption.dataset.title = caption.dataset.title || caption.textContent;
  caption.textContent = caption.dataset.title + (answer.note ? " (" + answer.note + ")" : "");
  if (answer.figure) {
    note.hidden = true;
    div.hidden = false;
    const layout = Object.assign({}, answer.figure.layout, { height: 380, autosize: true });
    await Plotly.react(div, answer.figure.data, layout, PLOT_CONFIG);
    div.dataset.points = String(countPoints(answer.figure.data));
  } else {
    if (div.data) Plotly.purge(div);
    div.hidden = true;
    div.dataset.points = "0";
    note.hidden = false;
    note.textContent = answer.unavailable;
  }
  div.dataset.state = answer.figure ? "drawn" : "unavailable";
}

function countPoints(traces) {
  let n = 0;
  for (const t of traces) {
    for (const key of ["x", "y", "z", "values"]) {
      if (Array.isArray(t[key])) { n += t[key].length; break; }
    }
    if (Array.isArray(t.dimensions) && t.dimensions.length) n += t.dimensions[0].values.length;
    if (t.base && Array.isArray(t.base)) n += 0;
  }
  return n;
}

// -- trial page ---------------------------------------------------------------------------

async function trialPage() {
  const name = BOOT.trial;
  let last = null;
  async function load() {
    const t = await api("/api/trial", { name });
    const signature = JSON.stringify(t);
    if (signature === last) return t;
    last = signature;
    const crumb = document.getElementById("crumb-experiment");
    crumb.href = "/experiments/" + encodeURIComponent(t.experiment);
    summaryList(document.getElementById("trial-summary"), [
      ["Experiment", link("/experiments/" + encodeURIComponent(t.experiment), t.experiment)],
      ["Status", el("span", t.status, "status-" + t.status)], ["Message", t.message],
      ["Objective", t.metric + " = " + fmt(t.objective)], ["Exit code", t.exitCode],
      ["Executor", t.executor], ["Created", t.createdAt], ["Started", t.startedAt],
      ["Completed", t.completedAt],
    ]);
    document.querySelector("#trial-params tbody").replaceChildren(
      ...Object.entries(t.parameters).map(([k, v]) => {
        const tr = el("tr");
        tr.append(el("th", k), el("td", fmt(v), typeof v === "number" ? "num" : ""));
        return tr;
      }));
    document.querySelector("#trial-metrics tbody").replaceChildren(
      ...Object.entries(t.metrics).map(([k, m]) => {
        const tr = el("tr");
        tr.append(el("td", k), el("td", fmt(m.min), "num"), el("td", fmt(m.max), "num"),
          el("td", fmt(m.latest), "num"));
        return tr;
      }));
    await drawHistory(t.history);
    const log = document.getElementById("trial-log");
    log.textContent = t.log === null ? "(no log: only local trials keep a log file here)" : t.log;
    log.scrollTop = log.scrollHeight;
    return t;
  }
  await load();
  poll(load);
}

async function drawHistory(history) {
  // Own plotly code: one line per metric, value against step (Optuna has no such plot).
  await plotlyReady;
  const div = document.getElementById("fig-metric-history");
  const note = div.parentElement.querySelector(".unavailable");
  const traces = Object.entries(history).map(([metric, points]) => ({
    type: "scatter", mode: "lines+markers", name: metric,
    x: points.map((p) => p.step), y: points.map((p) => (typeof p.value === "number" ? p.value : null)),
  }));
  if (!traces.length) {
    div.hidden = true;
    note.hidden = false;
    note.textContent = "no observations stored for this trial";
    div.dataset.state = "unavailable";
    return;
  }
  note.hidden = true;
  div.hidden = false;
  await Plotly.react(div, traces, {
    height: 340, margin: { t: 20 }, xaxis: { title: { text: "step" } },
    yaxis: { title: { text: "value" } },
  }, PLOT_CONFIG);
  div.dataset.points = String(countPoints(traces));
  div.dataset.state = "drawn";
}

// -- start --------------------------------------------------------------------------------

const started = document.getElementById("experiments-page") ? experimentsPage()
  : document.getElementById("experiment-page") ? experimentPage()
  : document.getElementById("trial-page") ? trialPage() : Promise.resolve();
started.then(() => { document.body.dataset.ready = "1"; },
  (e) => { setLive(false); console.warn("dashboard:", e.message); });
