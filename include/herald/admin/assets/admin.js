// herald admin: the webhooks table, the create and edit form and View Logs, over /api.
// Plain DOM, no framework and nothing fetched from elsewhere: the page works offline.
// Every value from the API reaches the page through textContent, never as HTML.
"use strict";

const TOKEN_KEY = "herald-admin-token";
const EVENT_TYPES = ["create", "update", "delete"];
const state = { webhooks: [], logs: [], next: null, open: new Set(), filters: {} };

// ---------- small helpers ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (sel, root = document) => root.querySelector(sel);
const pad = (n, w = 2) => String(n).padStart(w, "0");

function formatTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}
function outcomePill(outcome, status) {
  const cls = outcome === "delivered" ? "ok" : outcome === "retrying" ? "warn" : "bad";
  return h("span", { class: `pill ${cls}`, title: outcome }, outcome);
}
function statusText(status) { return status ? String(status) : "—"; }

// ---------- API ----------
class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.field = problem && problem.field;
  }
}
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    showSignIn("The admin token was not accepted. Enter it again.");
    throw new ApiError(401, { detail: "not signed in" });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---------- toasts ----------
function toast(message, kind = "ok", extra = null) {
  const t = h("div", { class: `toast ${kind}`, role: "status" }, message, extra ? [" ", extra] : []);
  $("#toasts").append(t);
  setTimeout(() => t.remove(), kind === "bad" ? 9000 : 5000);
}

// ---------- sign-in ----------
function showSignIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.classList.add("signed-out");
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").hidden = !message;
  $("#signin-error").textContent = message || "";
  $("#token").focus();
}
function showApp() {
  document.body.classList.remove("signed-out");
  $("#signin").hidden = true;
  $("#signin-error").hidden = true;
  $("#app").hidden = false;
}
async function signIn(ev) {
  ev.preventDefault();
  const token = $("#token").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token").value = "";
  showApp();
  await route();
}
// A token handed over in the address (#token=…, as herald-relay prints it) is kept for this
// tab only and removed from the address bar and history. It replaces the tab's token: a link
// opened in a tab that already shows the page is the newer word (the relay may have restarted
// with another token).
function takeTokenFromAddress() {
  const m = location.hash.match(/^#token=(.*)$/);
  if (!m) return;
  let token = m[1];
  try { token = decodeURIComponent(token); } catch { /* a stray %: taken as written */ }
  token = token.trim();
  // replaceState fires no hashchange, and the entry with the token is gone from history.
  history.replaceState(null, "", location.pathname + location.search + "#/webhooks");
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token").value = "";
}
async function addressChanged() {
  takeTokenFromAddress();
  if (!sessionStorage.getItem(TOKEN_KEY)) { showSignIn(""); return; }
  showApp();
  await route();
}
function signOut() {
  showSignIn("");
}

// ---------- routing: #/webhooks, #/logs?webhook=1 ----------
function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, query] = hash.split("?");
  return { name: name || "webhooks", params: new URLSearchParams(query || "") };
}
async function route() {
  const r = currentRoute();
  for (const a of document.querySelectorAll(".topbar nav a"))
    a.classList.toggle("current", a.dataset.view === r.name);
  $("#view-webhooks").hidden = r.name !== "webhooks";
  $("#view-logs").hidden = r.name !== "logs";
  $("#crumb").textContent = r.name === "logs" ? "Webhook Logs" : "Webhooks";
  try {
    if (r.name === "logs") {
      await loadWebhooks(false);
      state.filters = Object.fromEntries(r.params.entries());
      fillFilters();
      await loadLogs(false);
    } else {
      await loadWebhooks(true);
    }
  } catch (e) {
    if (e.status !== 401) toast(e.message, "bad");
  }
}

// ---------- webhooks table ----------
async function loadWebhooks(render) {
  const data = await api("GET", "/api/webhooks");
  state.webhooks = data.webhooks;
  state.formats = data.formats || [];
  if (render) renderWebhooks();
}

// Set through the CSSOM: the page's Content-Security-Policy refuses style attributes.
function bar(pct) {
  const i = h("i");
  i.style.width = `${pct}%`;
  return i;
}

function rateCell(a) {
  if (a.success_rate_24h === null) return h("td", { class: "num muted", title: "no delivery ended in the last 24 hours" }, "—");
  const pct = Math.round(a.success_rate_24h * 1000) / 10;
  return h("td", { class: "num", title: `${a.delivered_24h} delivered, ${a.failed_24h} failed in the last 24 hours` },
    h("div", { class: "rate" }, h("span", {}, `${pct}%`),
      h("span", { class: "bar" }, bar(pct))));
}

function lastCell(a) {
  if (!a.last) return h("td", { class: "muted" }, "never");
  const l = a.last;
  return h("td", { title: l.error || `${l.outcome} at ${formatTime(l.started_at)}` },
    outcomePill(l.outcome), " ", h("span", { class: "mono" }, statusText(l.status)), " ",
    h("span", { class: "muted" }, ago(l.started_at)));
}

function renderWebhooks() {
  const body = $("#webhooks-body");
  body.replaceChildren();
  $("#webhook-count").textContent = state.webhooks.length === 1 ? "1 webhook" : `${state.webhooks.length} webhooks`;
  if (state.webhooks.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: 9, class: "empty" },
      h("b", {}, "No webhooks yet"), "Create one to send object events to another system.")));
    return;
  }
  for (const w of state.webhooks) {
    const toggle = h("input", { type: "checkbox", checked: w.active, "aria-label": `Active: ${w.name}`,
      onchange: (ev) => setActive(w, ev.target.checked, ev.target) });
    body.append(h("tr", { dataset: { id: w.id } },
      h("td", { class: "num mono" }, w.id),
      h("td", { class: "name" }, w.name),
      h("td", { class: "url mono", title: w.url }, w.url),
      h("td", {}, w.events.map((t) => h("span", { class: "chip" }, t))),
      h("td", {}, h("label", { class: "switch", title: w.disabled_reason ? `Disabled by herald: ${w.disabled_reason}` : "" },
        toggle, h("span", { class: "track" }),
        h("span", { class: w.active ? "" : "muted" }, w.active ? "Active" : (w.disabled_reason ? "Disabled" : "Not active")))),
      lastCell(w.activity),
      rateCell(w.activity),
      h("td", {}, h("div", { class: "row-actions" },
        h("button", { class: "btn small", type: "button", onclick: (ev) => testWebhook(w, ev.currentTarget) }, "Test"),
        h("button", { class: "btn small", type: "button", onclick: () => { location.hash = `#/logs?webhook=${w.id}`; } }, "Logs"),
        h("button", { class: "btn small", type: "button", onclick: () => openForm(w) }, "Edit"),
        h("button", { class: "btn small", type: "button", "aria-label": `Delete ${w.name}`, onclick: () => confirmDelete(w) }, "Delete")))));
  }
}

async function setActive(w, active, input) {
  input.disabled = true;
  try {
    await api("PATCH", `/api/webhooks/${w.id}`, { active });
    toast(`${w.name} is ${active ? "active" : "not active"} now`);
  } catch (e) {
    if (e.status !== 401) toast(`Could not change ${w.name}: ${e.message}`, "bad");
  }
  await loadWebhooks(true);
}

async function testWebhook(w, button) {
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const entry = await api("POST", `/api/webhooks/${w.id}/test`, {});
    const link = h("a", { href: `#/logs?webhook=${w.id}` }, "View in logs");
    if (entry.outcome === "delivered")
      toast(`Test event delivered to ${w.name}: HTTP ${entry.status} in ${duration(entry.duration_ms)}.`, "ok", link);
    else
      toast(`Test event to ${w.name} failed: ${entry.error}`, "bad", link);
  } catch (e) {
    if (e.status !== 401) toast(`Test failed: ${e.message}`, "bad");
  }
  button.disabled = false;
  button.textContent = "Test";
  await loadWebhooks(true);
}

// ---------- delete with confirmation ----------
let pendingDelete = null;
function confirmDelete(w) {
  pendingDelete = w;
  $("#delete-name").textContent = w.name;
  $("#delete-dialog").showModal();
}
async function doDelete(ev) {
  ev.preventDefault();
  const w = pendingDelete;
  $("#delete-dialog").close();
  if (!w) return;
  try {
    await api("DELETE", `/api/webhooks/${w.id}`);
    toast(`Deleted ${w.name}. Its log entries are kept.`);
  } catch (e) {
    if (e.status !== 401) toast(`Could not delete ${w.name}: ${e.message}`, "bad");
  }
  await loadWebhooks(true);
}

// ---------- create and edit ----------
let editing = null; // the webhook being edited, null when creating

function randomSecret() {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return "whsec_" + btoa(String.fromCharCode(...bytes));
}

function secretRow(value, masked) {
  const row = h("div", { class: "list-row secret" });
  if (masked) {
    row.dataset.kept = "1";
    row.dataset.value = value;
    row.append(h("span", { class: "secret-shown", title: "stored; shown masked" }, value));
  } else {
    row.append(h("input", { type: "text", class: "mono", value, "aria-label": "Signing secret", spellcheck: "false" }));
  }
  row.append(h("button", { class: "btn small", type: "button", onclick: () => row.remove() }, "Remove"));
  return row;
}

function headerRow(name, value) {
  const row = h("div", { class: "list-row header" },
    h("input", { type: "text", placeholder: "Header name", value: name || "", "aria-label": "Header name", class: "hname" }),
    h("input", { type: "text", placeholder: "Value", value: value || "", "aria-label": "Header value", class: "hvalue" }));
  row.append(h("button", { class: "btn small", type: "button", onclick: () => row.remove() }, "Remove"));
  return row;
}

function clearErrors() {
  $("#form-error").hidden = true;
  for (const el of document.querySelectorAll("#webhook-form .err")) { el.textContent = ""; el.hidden = true; }
  for (const el of document.querySelectorAll("#webhook-form .invalid")) el.classList.remove("invalid");
}

// Puts the API's message under the field it names ("url", "events[1]", "headers.X-Key").
function showError(field, message) {
  const base = (field || "").split(/[.[]/)[0];
  const slot = base && $(`#webhook-form .err[data-field="${base}"]`);
  if (slot) {
    // "url: scheme 'ftp' is …" under the URL field reads better without its "url: ".
    slot.textContent = message.startsWith(`${base}: `) ? message.slice(base.length + 2) : message;
    slot.hidden = false;
    const input = $(`#webhook-form [name="${base}"]`);
    if (input) { input.classList.add("invalid"); input.focus(); }
  } else {
    $("#form-error").textContent = message;
    $("#form-error").hidden = false;
  }
}

function openForm(w) {
  editing = w || null;
  const f = $("#webhook-form");
  f.reset();
  clearErrors();
  $("#form-title").textContent = w ? `Edit webhook ${w.id}` : "Create Webhook";
  $("#form-submit").textContent = w ? "Save changes" : "Create Webhook";
  f.elements.name.value = w ? w.name : "";
  f.elements.url.value = w ? w.url : "";
  for (const t of EVENT_TYPES) f.elements[`event-${t}`].checked = w ? w.events.includes(t) : t === "create";
  f.elements.active.checked = w ? w.active : true;
  f.elements.timeout.value = w && w.timeout ? w.timeout : "";
  // The dispatcher's formats, the first its default ("" sends none: the default).
  const formats = state.formats || [];
  // A stored format the dispatcher no longer offers stays selected (saving keeps it).
  const shown = w && w.format && !formats.includes(w.format) ? [...formats, w.format] : formats;
  f.elements.format.replaceChildren(
    h("option", { value: "" }, formats.length ? `default (${formats[0]})` : "default"),
    ...shown.map((name) => h("option", { value: name },
      formats.includes(name) ? name : `${name} (not offered)`)));
  f.elements.format.value = w && w.format ? w.format : "";
  f.elements.retry_schedule.value = w && w.retry_schedule ? w.retry_schedule.join(", ") : "";
  $("#secrets").replaceChildren(...(w ? w.secrets.map((s) => secretRow(s, true)) : []));
  $("#headers").replaceChildren(...(w ? Object.entries(w.headers).map(([k, v]) => headerRow(k, v)) : []));
  $("#webhook-dialog").showModal();
  f.elements.name.focus();
}

function formBody() {
  const f = $("#webhook-form");
  const body = {
    name: f.elements.name.value.trim(),
    url: f.elements.url.value.trim(),
    events: EVENT_TYPES.filter((t) => f.elements[`event-${t}`].checked),
    active: f.elements.active.checked,
  };
  const timeout = f.elements.timeout.value.trim();
  if (timeout) body.timeout = timeout; else if (editing) body.timeout = null;
  const format = f.elements.format.value;
  if (format) body.format = format; else if (editing) body.format = null;
  const retry = f.elements.retry_schedule.value.split(",").map((d) => d.trim()).filter(Boolean);
  if (retry.length) body.retry_schedule = retry; else if (editing) body.retry_schedule = null;
  // Stored secrets and credential headers come masked; sent back unchanged, the server keeps
  // the stored values they stand for.
  body.secrets = [...document.querySelectorAll("#secrets .secret")]
    .map((r) => (r.dataset.kept ? r.dataset.value : $("input", r).value.trim()))
    .filter(Boolean);
  const headers = {};
  for (const r of document.querySelectorAll("#headers .header")) {
    const name = $(".hname", r).value.trim();
    if (name) headers[name] = $(".hvalue", r).value;
  }
  body.headers = headers;
  return body;
}

async function submitForm(ev) {
  ev.preventDefault();
  clearErrors();
  const body = formBody();
  if (!body) return;
  if (body.events.length === 0) { showError("events", "Choose at least one event type."); return; }
  const button = $("#form-submit");
  button.disabled = true;
  try {
    const w = editing
      ? await api("PATCH", `/api/webhooks/${editing.id}`, body)
      : await api("POST", "/api/webhooks", body);
    $("#webhook-dialog").close();
    toast(editing ? `Saved ${w.name}.` : `Created ${w.name} (id ${w.id}).`);
    await loadWebhooks(true);
  } catch (e) {
    if (e.status !== 401) showError(e.field, e.message);
  } finally {
    button.disabled = false;
  }
}

// ---------- View Logs ----------
function fillFilters() {
  const sel = $("#filter-webhook");
  const keep = state.filters.webhook || "";
  sel.replaceChildren(h("option", { value: "" }, "All webhooks"),
    ...state.webhooks.map((w) => h("option", { value: String(w.id) }, `${w.id} · ${w.name}`)));
  if (keep && !state.webhooks.some((w) => String(w.id) === keep))
    sel.append(h("option", { value: keep }, `${keep} · (deleted)`));
  sel.value = keep;
  $("#filter-event").value = state.filters.event || "";
  $("#filter-outcome").value = state.filters.outcome || "";
  $("#filter-since").value = toLocalInput(state.filters.since);
  $("#filter-until").value = toLocalInput(state.filters.until);
}
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function applyFilters(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams();
  const add = (k, v) => { if (v) q.set(k, v); };
  add("webhook", $("#filter-webhook").value);
  add("event", $("#filter-event").value);
  add("outcome", $("#filter-outcome").value);
  const since = $("#filter-since").value, until = $("#filter-until").value;
  if (since) q.set("since", new Date(since).toISOString());
  if (until) q.set("until", new Date(until).toISOString());
  const hash = `#/logs${q.toString() ? "?" + q : ""}`;
  if (location.hash === hash) route(); else location.hash = hash;
}
function resetFilters() { location.hash = "#/logs"; }

async function loadLogs(more) {
  const q = new URLSearchParams(state.filters);
  q.set("limit", "50");
  if (more && state.next) q.set("cursor", state.next);
  const data = await api("GET", `/api/logs?${q}`);
  state.logs = more ? state.logs.concat(data.entries) : data.entries;
  state.next = data.next;
  if (!more) state.open = new Set([...state.open].filter((id) => state.logs.some((e) => e.id === id)));
  renderLogs();
}

function renderLogs() {
  const body = $("#logs-body");
  body.replaceChildren();
  $("#logs-more").hidden = !state.next;
  const n = state.logs.length;
  $("#log-count").textContent = `${n}${state.next ? "+" : ""} attempt${n === 1 && !state.next ? "" : "s"}, newest first`;
  if (state.logs.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: 10, class: "empty" },
      h("b", {}, "No attempts match"), "Deliveries appear here as soon as an event reaches a webhook.")));
    return;
  }
  for (const e of state.logs) {
    const open = state.open.has(e.id);
    const row = h("tr", { class: `entry${open ? " open" : ""}`, dataset: { id: e.id, delivery: e.delivery_id }, tabindex: "0",
      "aria-expanded": open ? "true" : "false",
      onclick: (ev) => { if (!ev.target.closest("button")) toggleEntry(e.id); },
      onkeydown: (ev) => { if (ev.key === "Enter") toggleEntry(e.id); } },
      h("td", { class: "when", title: e.started_at }, h("span", { class: "caret" }, "▸"), " ", formatTime(e.started_at)),
      h("td", {}, h("span", { class: "mono muted" }, `${e.webhook_id} `), e.webhook_name),
      h("td", {}, h("span", { class: "chip" }, e.event_type), " ", h("span", { class: "mono muted" }, e.object_id)),
      h("td", { class: "num" }, e.attempt),
      h("td", { class: "num mono" }, statusText(e.status)),
      h("td", {}, outcomePill(e.outcome)),
      h("td", { class: "num" }, duration(e.duration_ms)),
      h("td", { class: "error", title: e.error }, h("span", {}, e.error || (e.warning ? "" : "")), e.warning ? h("span", { class: "muted" }, e.warning) : null),
      h("td", {}, h("div", { class: "row-actions" },
        h("button", { class: "btn small", type: "button", onclick: (ev) => redeliver(e, ev.currentTarget) }, "Redeliver"))));
    body.append(row);
    if (open) body.append(detailRow(e));
  }
}

function toggleEntry(id) {
  if (state.open.has(id)) state.open.delete(id); else state.open.add(id);
  renderLogs();
}

const details = new Map(); // id -> the full entry with request headers and body
function detailRow(e) {
  const cell = h("td", { colspan: 9 }, h("div", { class: "muted" }, "Loading…"));
  const row = h("tr", { class: "detail", dataset: { id: e.id } }, cell);
  const fill = (full) => cell.replaceChildren(detailContent(full));
  if (details.has(e.id)) fill(details.get(e.id));
  else api("GET", `/api/logs/${e.id}`).then((full) => { details.set(e.id, full); fill(full); })
    .catch((err) => cell.replaceChildren(h("div", { class: "form-error" }, err.message)));
  return row;
}

function prettyBody(text) {
  if (text === null || text === undefined) return "(not kept)";
  if (text === "") return "(empty)";
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

function detailContent(e) {
  const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const request = e.request || { headers: [], body: null };
  const headers = request.headers.map((x) => `${x.name}: ${x.value}`).join("\n");
  return h("div", { class: "detail-grid" },
    h("section", {},
      h("h3", {}, "Request"),
      kv([["POST", e.url], ["Delivery", e.delivery_id], ["Event", e.event_id], ["Attempt", String(e.attempt)],
          ["Started", `${formatTime(e.started_at)} (${e.started_at})`]]),
      h("h3", {}, "Headers"), h("pre", { class: "code" }, headers || "(not kept)"),
      h("h3", {}, "Body"), h("pre", { class: "code" }, prettyBody(request.body))),
    h("section", {},
      h("h3", {}, "Response"),
      kv([["Status", e.status ? String(e.status) : "no response"], ["Outcome", e.outcome], ["Duration", duration(e.duration_ms)],
          ["Next attempt", e.next_attempt_at ? formatTime(e.next_attempt_at) : null], ["Error", e.error || null]]),
      e.warning ? h("div", { class: "note" }, e.warning) : null,
      h("h3", {}, "Response body (excerpt)"), h("pre", { class: "code" }, prettyBody(e.response_excerpt))));
}

async function redeliver(e, button) {
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const entry = await api("POST", `/api/deliveries/${encodeURIComponent(e.delivery_id)}/redeliver`);
    if (entry.outcome === "delivered")
      toast(`Redelivered to ${entry.webhook_name}: HTTP ${entry.status} in ${duration(entry.duration_ms)}.`);
    else
      toast(`Redelivery to ${entry.webhook_name} failed: ${entry.error}`, "bad");
  } catch (err) {
    if (err.status !== 401) toast(`Redeliver failed: ${err.message}`, "bad");
  }
  await loadLogs(false);
}

// ---------- start ----------
function start() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", signOut);
  $("#create").addEventListener("click", () => openForm(null));
  $("#view-logs-button").addEventListener("click", () => { location.hash = "#/logs"; });
  $("#webhook-form").addEventListener("submit", submitForm);
  $("#form-cancel").addEventListener("click", () => $("#webhook-dialog").close());
  $("#add-secret").addEventListener("click", () => {
    const row = secretRow(randomSecret(), false);
    $("#secrets").append(row);
    $("input", row).select();
  });
  $("#add-header").addEventListener("click", () => { const r = headerRow("", ""); $("#headers").append(r); $(".hname", r).focus(); });
  $("#delete-form").addEventListener("submit", doDelete);
  $("#delete-cancel").addEventListener("click", () => $("#delete-dialog").close());
  $("#filters").addEventListener("submit", applyFilters);
  $("#filters-reset").addEventListener("click", resetFilters);
  $("#logs-refresh").addEventListener("click", () => loadLogs(false).catch((e) => toast(e.message, "bad")));
  $("#logs-more").addEventListener("click", () => loadLogs(true).catch((e) => toast(e.message, "bad")));
  // A fresh load and a link opened in a tab already showing the page (only the fragment
  // changes, so no load) take the same way.
  window.addEventListener("hashchange", addressChanged);
  addressChanged();
}
document.addEventListener("DOMContentLoaded", start);
