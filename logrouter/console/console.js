// logrouter's web console: apps, a live tail, drains and the node's numbers.
//
// Log lines are hostile input: they only ever reach the page as text (textContent and text
// nodes; no HTML is ever parsed from data). The API key stays in this tab (sessionStorage).

const KEY = "logrouter.key";
const POLL_MS = 2000;
const MAX_LINES = 5000; // lines kept in the page, newest last
const MAX_APPS_SHOWN = 500;
const SPARK_POINTS = 150; // five minutes of two-second samples

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- API ----------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}`,
                    Accept: "application/json", "X-Requested-With": "logrouter-console" };
  if (path.startsWith("/apps")) headers.Accept = "application/vnd.heroku+json; version=3";
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) throw new Unauthorized("wrong key");
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const message = (data && (data.error || data.message)) || text || resp.statusText;
    throw new Error(`${resp.status}: ${message}`);
  }
  return data;
}

function signedOut() {
  sessionStorage.removeItem(KEY);
  stopStream();
  show("login");
}

// ---- views --------------------------------------------------------------------------------

let current = null; // "apps" | "app" | "login"
let currentApp = null; // channel id on the app view

function show(view) {
  current = view;
  $("login-view").hidden = view !== "login";
  $("apps-view").hidden = view !== "apps";
  $("app-view").hidden = view !== "app";
  $("logout").hidden = view === "login";
  if (view === "login") {
    $("node-summary").textContent = "";
    $("key").focus();
  }
}

async function route() {
  if (!sessionStorage.getItem(KEY)) return show("login");
  const m = location.hash.match(/^#\/app\/(.+)$/);
  stopStream();
  currentApp = m ? decodeURIComponent(m[1]) : null;
  show(m ? "app" : "apps");
  await poll();
  if (currentApp) await openApp(currentApp);
}

// ---- login --------------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("login-error");
  error.hidden = true;
  sessionStorage.setItem(KEY, $("key").value);
  try {
    await api("GET", "/v3/stats?limit=1");
  } catch (err) {
    sessionStorage.removeItem(KEY);
    error.textContent = err instanceof Unauthorized ? "Wrong key: nothing is shown without the router's API key."
                                                    : `Cannot reach the router (${err.message}).`;
    error.hidden = false;
    return;
  }
  $("key").value = "";
  await route();
});

$("logout").addEventListener("click", () => { location.hash = "#/"; signedOut(); });
window.addEventListener("hashchange", () => { route().catch(report); });

function report(err) {
  if (err instanceof Unauthorized) return signedOut();
  console.warn(err);
}

// ---- polling: apps, drains, node numbers ---------------------------------------------------

const rateIn = [];
const rateOut = [];
let lastTotals = null;
let stats = null;
let pollTimer = null;

async function poll() {
  clearTimeout(pollTimer);
  try {
    if (current === "apps" || current === "app") {
      stats = await api("GET", statsPath());
      updateNode(stats, performance.now());
      if (current === "apps") renderApps(stats);
      if (current === "app") renderDrains(stats);
    }
  } catch (err) {
    report(err);
  }
  if (sessionStorage.getItem(KEY)) pollTimer = setTimeout(poll, POLL_MS);
}

// What the view shows, not the whole node: a node may have tens of thousands of apps.
function statsPath() {
  if (current === "app") return `/v3/stats?channel=${encodeURIComponent(currentApp || "")}`;
  const filter = $("apps-filter").value.trim();
  return `/v3/stats?sort=name&limit=${MAX_APPS_SHOWN}&q=${encodeURIComponent(filter)}`;
}

function sum(totals, prefix) {
  let total = 0;
  for (const [name, value] of Object.entries(totals)) {
    if (name.startsWith(prefix) && !name.includes("_created")) total += value;
  }
  return total;
}

function updateNode(s, now) {
  const t = {
    in: sum(s.totals, "logrouter_messages_received_total"),
    out: s.drain_totals.delivered,
    at: now,
  };
  if (lastTotals) {
    const dt = (t.at - lastTotals.at) / 1000;
    push(rateIn, Math.max(0, (t.in - lastTotals.in) / dt));
    push(rateOut, Math.max(0, (t.out - lastTotals.out) / dt));
  }
  lastTotals = t;
  const inNow = rateIn.at(-1) || 0;
  $("node-summary").textContent = `${s.counts.channels} apps · ${fmt(inNow)} lines/s in`;
  if (current !== "apps") return;
  $("rate-in").textContent = fmt(inNow);
  $("rate-out").textContent = fmt(rateOut.at(-1) || 0);
  spark($("spark-in"), rateIn);
  spark($("spark-out"), rateOut);
  const numbers = $("node-numbers");
  const rows = [
    ["lines received", sum(s.totals, "logrouter_messages_received_total")],
    ["malformed (all reasons)", sum(s.totals, "logrouter_messages_malformed_total")],
    ["unknown token", sum(s.totals, "logrouter_messages_unknown_token_total")],
    ["dropped by drains (L10)", s.drain_totals.dropped],
    ["dropped by slow tails (L11)", sum(s.totals, "logrouter_tail_lines_dropped_total")],
    ["connections open", sum(s.totals, "logrouter_connections{")],
    ["connection errors", sum(s.totals, "logrouter_connection_errors_total")],
  ];
  for (const [name, value] of Object.entries(s.totals)) {
    const m = name.match(/^logrouter_messages_malformed_total\{reason=(.+)\}$/);
    if (m && value > 0) rows.push([`  malformed: ${m[1]}`, value]);
  }
  numbers.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, fmt(v))]));
}

function push(series, value) {
  series.push(value);
  if (series.length > SPARK_POINTS) series.shift();
}

function fmt(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return String(Math.round(n));
}

function spark(canvas, series) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  if (series.length < 2) return;
  const max = Math.max(1, ...series);
  ctx.strokeStyle = "#3b5bdb";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  series.forEach((v, i) => {
    const x = (i / (SPARK_POINTS - 1)) * width;
    const y = height - 2 - (v / max) * (height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

// ---- apps ---------------------------------------------------------------------------------

let filterTimer = null;
$("apps-filter").addEventListener("input", () => {  // the node filters: ask again, shortly
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => { poll().catch(report); }, 250);
});

function renderApps(s) {
  const shown = s.channels; // filtered and sorted by the node (statsPath)
  const rows = shown.map((c) => {
    const link = el("a", { href: `#/app/${encodeURIComponent(c.id)}` }, c.name);
    return el("tr", {}, el("td", {}, link), el("td", { class: "muted" }, c.id),
              el("td", { class: "num" }, fmt(c.history)), el("td", { class: "num" }, c.drains),
              el("td", { class: "num" }, fmt(c.rate)),
              el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `Delete ${c.name}`,
                                          onclick: () => deleteApp(c.id, c.name) }, "Delete")));
  });
  $("apps-table").tBodies[0].replaceChildren(...rows);
  const more = s.counts.matched_channels - shown.length;
  $("apps-more").textContent = more > 0 ? `${more} more apps: narrow the filter.`
    : shown.length === 0 ? "No apps." : "";
}

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("create-error");
  error.hidden = true;
  try {
    const app = await api("POST", "/apps", { name: $("new-app").value.trim() });
    $("new-app").value = "";
    location.hash = `#/app/${encodeURIComponent(app.channel_id)}`;
  } catch (err) {
    if (err instanceof Unauthorized) return signedOut();
    error.textContent = err.message;
    error.hidden = false;
  }
});

async function deleteApp(id, name) {
  if (!window.confirm(`Delete app ${name}? Its history, tokens and drains go with it.`)) return;
  try {
    await api("DELETE", `/v3/channels/${encodeURIComponent(id)}`);
  } catch (err) {
    return report(err);
  }
  if (location.hash !== "#/") location.hash = "#/"; else await poll();
}

$("delete-app").addEventListener("click", () => {
  if (currentApp) deleteApp(currentApp, $("app-title").textContent);
});

// ---- an app: history and live tail ----------------------------------------------------------

let source = null; // the EventSource
let lines = []; // {time, src, ps, msg, sys, cls}, newest last, at most MAX_LINES
let pending = []; // lines received since the last paint
let paused = false;
let seenIds = new Set();
let seenOrder = [];
let paintQueued = false;
const knownPs = new Set();
const knownSources = new Set();

async function openApp(id) {
  let channel;
  try {
    channel = await api("GET", `/v3/channels/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof Unauthorized) throw err;
    $("app-title").textContent = "No such app";
    $("app-id").textContent = id;
    return;
  }
  const one = await api("GET", `/v3/stats?channel=${encodeURIComponent(channel.channel)}`);
  const app = one.channels[0] || {};
  $("app-title").textContent = app.name || channel.channel;
  $("app-id").textContent = `channel ${channel.channel}`;
  const tokens = Object.entries(channel.tokens || {});
  $("app-tokens").textContent = tokens.length
    ? `Tokens: ${tokens.map(([name, token]) => `${name} ${token}`).join(" · ")}` : "No tokens.";
  lines = []; pending = []; seenIds = new Set(); seenOrder = [];
  knownPs.clear(); knownSources.clear();
  $("log").replaceChildren();
  $("filter-source").replaceChildren(el("option", { value: "" }, "all"));
  $("ps-list").replaceChildren();
  const session = await api("POST", "/v3/sessions", { channel_id: channel.channel, num: "1500", tail: true });
  startStream(new URL(session.url, location.href).pathname);
}

function startStream(path) {
  stopStream();
  source = new EventSource(path);
  $("stream-state").textContent = "connecting…";
  source.onopen = () => { $("stream-state").textContent = "live"; };
  source.onerror = () => { $("stream-state").textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    const id = event.lastEventId;
    if (id) {
      if (seenIds.has(id)) return; // a reconnect never shows a line twice
      seenIds.add(id);
      seenOrder.push(id);
      if (seenOrder.length > MAX_LINES * 2) seenIds.delete(seenOrder.shift());
    }
    const line = parse(event.data);
    lines.push(line);
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    if (!paused) {
      pending.push(line);
      if (!paintQueued) { paintQueued = true; requestAnimationFrame(paint); }
    }
  };
}

function stopStream() {
  if (source) { source.close(); source = null; }
}

const LINE = /^(\S+) ([^\s[]+)\[([^\]]*)\]: ?([\s\S]*)$/;

function parse(text) {
  const m = LINE.exec(text);
  if (!m) return { time: "", src: "", ps: "", msg: text, sys: false, cls: "" };
  const [, time, src, ps, msg] = m;
  const sys = src === "logplex" || src === "Logplex";
  if (!knownSources.has(src)) {
    knownSources.add(src);
    $("filter-source").append(el("option", { value: src }, src));
  }
  if (ps && !knownPs.has(ps)) {
    knownPs.add(ps);
    if (knownPs.size <= 200) $("ps-list").append(el("option", { value: ps }));
  }
  return { time, src, ps, msg, sys, cls: `c${hash(`${src}[${ps.split(".")[0]}]`) % 8}` };
}

function hash(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
}

function visible(line) {
  const ps = $("filter-ps").value.trim();
  const src = $("filter-source").value;
  if (src && line.src !== src && !line.sys) return false;
  if (ps && line.ps !== ps && !line.ps.startsWith(`${ps}.`) && !line.sys) return false;
  return true;
}

function render(line, needle) {
  const node = el("span", { class: line.sys ? "line sys" : "line" });
  if (line.time) node.append(el("span", { class: "time" }, line.time), " ");
  if (line.src) node.append(el("span", { class: line.cls }, `${line.src}[${line.ps}]:`), " ");
  if (!needle) {
    node.append(line.msg);
    return node;
  }
  const lower = line.msg.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(needle); i !== -1; i = lower.indexOf(needle, at)) {
    node.append(line.msg.slice(at, i), el("mark", {}, line.msg.slice(i, i + needle.length)));
    at = i + needle.length;
  }
  node.append(line.msg.slice(at));
  return node;
}

function paint() {
  paintQueued = false;
  const log = $("log");
  const needle = $("search").value.toLowerCase();
  const fragment = document.createDocumentFragment();
  for (const line of pending) if (visible(line)) fragment.append(render(line, needle));
  pending = [];
  log.append(fragment);
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if ($("follow").checked) log.scrollTop = log.scrollHeight;
}

function repaint() {
  $("log").replaceChildren();
  pending = lines.slice();
  paint();
}

for (const id of ["filter-ps", "filter-source", "search"]) $(id).addEventListener("input", repaint);

$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(paused));
  if (!paused) repaint();
});

$("log").addEventListener("wheel", (event) => {
  if (event.deltaY < 0) $("follow").checked = false;
});

// ---- an app's drains ----------------------------------------------------------------------

function renderDrains(s) {
  if (!currentApp) return;
  const app = s.channels.find((c) => c.id === currentApp || c.name === currentApp);
  const drains = s.drains.filter((d) => app && d.channel_id === app.id);
  const items = drains.map((d) => {
    const state = d.degraded ? ["degraded", "state-bad"]
      : d.connected ? ["connected", "state-ok"]
      : d.last_error ? ["failing", "state-bad"] : ["idle", ""];
    const facts = [
      ["state", el("span", { class: state[1] }, state[0])],
      ["token", d.token],
      ["delivered", fmt(d.delivered || 0)],
      ["dropped", fmt(d.dropped || 0)],
      ["buffered", fmt(d.buffered || 0)],
    ];
    if (d.last_error) facts.push(["last error", d.last_error]);
    return el("li", { "data-drain": d.id },
      el("div", {}, el("strong", {}, d.url)),
      el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("button", { type: "button", class: "danger", "aria-label": `Remove drain ${d.url}`,
                     onclick: () => removeDrain(app.id, d.id) }, "Remove"));
  });
  $("drains-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "No drains.")]));
}

async function removeDrain(channelId, drainId) {
  try {
    await api("DELETE", `/v3/channels/${encodeURIComponent(channelId)}/drains/${drainId}`);
  } catch (err) {
    return report(err);
  }
  await poll();
}

$("drain-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("drain-error");
  error.hidden = true;
  try {
    await api("POST", `/v3/channels/${encodeURIComponent(currentApp)}/drains`, { url: $("drain-url").value.trim() });
    $("drain-url").value = "";
    await poll();
  } catch (err) {
    if (err instanceof Unauthorized) return signedOut();
    error.textContent = err.message;
    error.hidden = false;
  }
});

route().catch(report);
