// docs/openapi.yaml against a linter and against the real server.
//
//   node openapi.test.mjs --relay PATH --receiver PATH [--doc docs/openapi.yaml]
//
// (a) `redocly lint` with its recommended rules: any error or warning fails.
// (b) herald-relay --admin delivering to herald-receiver, both as processes: every route of the
//     admin server's router is called, for its successes and the failures that can be provoked
//     (400, 401, 404, 405, 409, 413, 431), and each answer is checked against the document: its
//     status must be listed for the operation, its content type too, its body must validate
//     against the schema (ajv) and its required headers must be there. Every operation of the
//     document must have been answered with a 2xx at least once, and the document's paths must
//     be the router's.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

const here = dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
for (const required of ["relay", "receiver"])
  if (!args[required]) fail(`--${required} is required`);
const docPath = args.doc || join(here, "..", "..", "docs", "openapi.yaml");
const WAIT = 60_000; // generous: a loaded CI machine with sanitizers is slow

function fail(message) {
  console.error(`openapi test: ${message}`);
  process.exit(1);
}
function log(message) {
  console.log(`openapi test: ${message}`);
}

{
  // @redocly/cli 2 runs on Node.js 20.19 or later (Debian 12's own nodejs is 18)
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 19))
    fail(`Node.js ${process.versions.node} is too old for @redocly/cli: it needs 20.19 or later`);
}
let Ajv, addFormats, YAML;
try {
  Ajv = (await import("ajv")).default;
  addFormats = (await import("ajv-formats")).default;
  YAML = await import("yaml");
} catch {
  fail("ajv, ajv-formats or yaml is not installed: run ./scripts/test, or npm ci --prefix tests/openapi");
}
const redocly = join(here, "node_modules", "@redocly", "cli", "bin", "cli.js");
if (!existsSync(redocly))
  fail("@redocly/cli is not installed: run ./scripts/test, or npm ci --prefix tests/openapi");

// ---------- (a) the linter ----------
{
  const run = spawnSync(process.execPath, [redocly, "lint", "--extends", "recommended", "--format", "json", docPath], {
    encoding: "utf8",
    timeout: WAIT,
    // no telemetry, no update check: the test talks to nothing but loopback
    env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
           REDOCLY_SUPPRESS_NOTIFICATIONS: "true" },
  });
  let report;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    fail(`redocly lint gave no report (exit ${run.status}): ${run.stderr || run.error}`);
  }
  for (const p of report.problems) {
    const at = p.location?.[0];
    console.error(`${docPath}:${at?.start?.line ?? "?"}:${at?.start?.col ?? "?"}: ${p.severity} ${p.ruleId}: ${p.message} (${at?.pointer ?? ""})`);
  }
  const { errors, warnings } = report.totals;
  if (errors + warnings > 0) fail(`redocly lint ${report.version}: ${errors} errors, ${warnings} warnings`);
  log(`redocly lint ${report.version}: no errors, no warnings`);
}

// ---------- the document as schemas ----------
const doc = YAML.parse(readFileSync(docPath, "utf8"));
// OpenAPI 3.0 schema objects: ajv knows `nullable`; `example` and the like are only ignored.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi");

const pointer = (...segments) =>
  "#/" + segments.map((s) => encodeURIComponent(String(s).replaceAll("~", "~0").replaceAll("/", "~1"))).join("/");
function resolve(ref) {
  let node = doc;
  for (const s of ref.slice(2).split("/"))
    node = node[decodeURIComponent(s).replaceAll("~1", "/").replaceAll("~0", "~")];
  return node;
}

// The routes of admin::server's route table (make_routes in include/herald/admin/impl/server.hpp),
// which spells them as the document does.
const router = ["/", "/assets/{name}", "/healthz", "/metrics", "/api/webhooks", "/api/webhooks/{id}",
  "/api/webhooks/{id}/test", "/api/logs", "/api/logs/{id}", "/api/deliveries/{id}/redeliver", "/api/events"];
{
  const documented = Object.keys(doc.paths).sort();
  if (JSON.stringify(documented) !== JSON.stringify([...router].sort()))
    fail(`the document's paths ${JSON.stringify(documented)} are not the router's ${JSON.stringify(router)}`);
}
const templates = Object.keys(doc.paths).map((t) => ({
  template: t,
  re: new RegExp("^" + t.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
}));

// ---------- the processes ----------
const work = mkdtempSync(join(tmpdir(), "herald-openapi-"));
const token = randomBytes(24).toString("hex");
writeFileSync(join(work, "token"), token + "\n", { mode: 0o600 });
const children = [];

function start(name, path, argv) {
  const child = spawn(path, argv, { stdio: ["ignore", "pipe", "pipe"] });
  child.out = "";
  child.err = "";
  child.stdout.on("data", (d) => { child.out += d; });
  child.stderr.on("data", (d) => { child.err += d; });
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.label = name;
  children.push(child);
  return child;
}
async function stopAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  await Promise.all(children.map((c) => Promise.race([c.exited, sleep(10_000)])));
  rmSync(work, { recursive: true, force: true });
}
const deadline = setTimeout(async () => {
  console.error("openapi test: took longer than 5 minutes");
  for (const c of children) console.error(`--- ${c.label} stderr ---\n${c.err}`);
  await stopAll();
  process.exit(1);
}, 300_000);

async function until(what, probe, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

let failures = 0;
const answered = new Set(); // "METHOD template" answered with a 2xx

try {
  const receiver = start("herald-receiver", args.receiver, ["--port", "0", "--port-file", join(work, "port"), "--status", "200"]);
  const receiverPort = await until("herald-receiver's port file", () =>
    existsSync(join(work, "port")) && readFileSync(join(work, "port"), "utf8").trim());
  const hookUrl = `http://127.0.0.1:${receiverPort}/hooks`;
  const relay = start("herald-relay", args.relay, [
    "--admin", "127.0.0.1:0", "--admin-token-file", join(work, "token"),
    "--allow-private", "127.0.0.1/32", "--retry-schedule", "0s,1s", "--drain-timeout", "5s"]);
  const base = await until("herald-relay to print the admin address", () => {
    const m = relay.err.match(/admin page and API on (http:\/\/127\.0\.0\.1:\d+)\//);
    return m && m[1];
  });
  log(`relay admin at ${base}/, receiver on port ${receiverPort}`);

  /** Sends one request and checks the answer against the document; returns it. */
  async function call(method, path, { body, json, headers = {}, auth = true, expect } = {}) {
    const h = { ...headers };
    if (auth) h.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      body = JSON.stringify(json);
      h["Content-Type"] ??= "application/json";
    }
    const res = await fetch(base + path, { method, headers: h, body });
    const text = await res.text();
    const what = `${method} ${path} -> ${res.status}`;
    const problems = check(method, path, res, text);
    if (expect !== undefined && res.status !== expect) problems.unshift(`expected ${expect}`);
    if (problems.length) {
      ++failures;
      console.error(`FAIL ${what}: ${problems.join("; ")}\n  body: ${text.slice(0, 400)}`);
    } else {
      log(`ok   ${what}`);
    }
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, text, body: parsed };
  }

  /** What is wrong with this answer, by the document; empty when nothing is. */
  function check(method, path, res, text) {
    const problems = [];
    const route = templates.find((t) => t.re.test(path.split("?")[0]));
    if (!route) return [`no path of the document matches ${path}`];
    const operation = doc.paths[route.template][method.toLowerCase()];
    let where;
    if (!operation) {
      // a method the path does not take: the document's 405 applies to every path
      if (res.status !== 405) return [`${method} is not documented for ${route.template}, yet the answer is ${res.status}`];
      where = pointer("components", "responses", "MethodNotAllowed");
    } else {
      const status = String(res.status);
      if (!operation.responses[status]) return [`status ${status} is not documented for ${method} ${route.template}`];
      where = pointer("paths", route.template, method.toLowerCase(), "responses", status);
      if (res.status >= 200 && res.status < 300) answered.add(`${method} ${route.template}`);
    }
    let response = resolve(where);
    if (response.$ref) {
      where = response.$ref;
      response = resolve(where);
    }
    for (const [name, header] of Object.entries(response.headers || {}))
      if (header.required && !res.headers.has(name)) problems.push(`required header ${name} is missing`);
    if (!response.content) {
      if (text.length) problems.push(`a body where the document has none (${text.length} bytes)`);
      return problems;
    }
    const type = (res.headers.get("content-type") || "").split(";")[0].trim();
    if (!response.content[type]) {
      problems.push(`content type '${type}' is not documented (${Object.keys(response.content).join(", ")})`);
      return problems;
    }
    if (!/json$/.test(type)) {
      if (!text.length) problems.push("an empty body");
      return problems;
    }
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      return [...problems, `not JSON: ${e.message}`];
    }
    problems.push(...numberProblems(text));
    const validate = ajv.getSchema("openapi" + where + "/content/" + encodeURIComponent(type.replaceAll("/", "~1")) + "/schema");
    if (!validate(value))
      for (const e of validate.errors) problems.push(`schema: ${e.instancePath || "(body)"} ${e.message} ${JSON.stringify(e.params)}`);
    return problems;
  }

  // Numbers as docs/payloads.md says herald writes them (2.4, 12.0, 1e+21), never Boost.JSON's
  // 2.4E0: every number token of the text, strings skipped.
  function numberProblems(text) {
    const bad = [];
    for (let i = 0; i < text.length; ++i) {
      const c = text[i];
      if (c === '"') {
        for (++i; i < text.length && text[i] !== '"'; ++i) if (text[i] === "\\") ++i;
      } else if (c === "-" || (c >= "0" && c <= "9")) {
        let j = i;
        while (j < text.length && /[-+.eE0-9]/.test(text[j])) ++j;
        const token = text.slice(i, j);
        if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]{2,3})?$/.test(token)) bad.push(`number written as ${token}`);
        i = j - 1;
      }
    }
    return bad;
  }

  // --- the page, health and metrics
  await call("GET", "/", { auth: false, expect: 200 });
  await call("POST", "/", { auth: false, expect: 405 });
  for (const asset of ["admin.css", "admin.js", "favicon.svg"])
    await call("GET", `/assets/${asset}`, { auth: false, expect: 200 });
  await call("GET", "/assets/nope.js", { auth: false, expect: 404 });
  await call("PUT", "/assets/admin.css", { auth: false, expect: 405 });
  await call("GET", "/healthz", { auth: false, expect: 200 });
  await call("DELETE", "/healthz", { auth: false, expect: 405 });
  await call("GET", "/metrics", { expect: 200 });
  await call("GET", "/metrics", { auth: false, expect: 401 });
  await call("POST", "/metrics", { expect: 405 });

  // --- webhooks
  const input = { name: "Sync", url: hookUrl, events: ["create", "update", "delete"],
                  secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], headers: { "X-Api-Key": "k-123456" },
                  timeout: "5s" };
  await call("GET", "/api/webhooks", { auth: false, expect: 401 });
  const created = await call("POST", "/api/webhooks", { json: input, expect: 201 });
  if (!created.headers.get("location")) { ++failures; console.error("FAIL POST /api/webhooks: no Location"); }
  const id = created.body?.id;
  await call("POST", "/api/webhooks", { json: input, expect: 409 });
  await call("POST", "/api/webhooks", { json: { ...input, name: "Bad", url: "ftp://x" }, expect: 400 });
  await call("POST", "/api/webhooks", { body: "{", headers: { "Content-Type": "application/json" }, expect: 400 });
  await call("POST", "/api/webhooks", { body: "x".repeat(1024 * 1024 + 1), headers: { "Content-Type": "application/json" }, expect: 413 });
  await call("GET", "/api/webhooks", { headers: { "X-Big": "y".repeat(20 * 1024) }, expect: 431 });
  await call("DELETE", "/api/webhooks", { expect: 405 });
  const other = await call("POST", "/api/webhooks", { json: { name: "Other", url: hookUrl, events: ["create"], active: false }, expect: 201 });
  await call("GET", "/api/webhooks", { expect: 200 });
  await call("GET", `/api/webhooks/${id}`, { expect: 200 });
  await call("GET", "/api/webhooks/999999", { expect: 404 });
  await call("GET", "/api/webhooks/abc", { expect: 404 });
  await call("POST", `/api/webhooks/${id}`, { expect: 405 });
  await call("PUT", `/api/webhooks/${id}`, { json: { ...input, secrets: undefined, active: true }, expect: 200 });
  await call("PUT", `/api/webhooks/${id}`, { json: { ...input, events: [] }, expect: 400 });
  await call("PUT", "/api/webhooks/999999", { json: input, expect: 404 });
  await call("PATCH", `/api/webhooks/${id}`, { json: { timeout: null, active: true }, headers: { "Content-Type": "application/merge-patch+json" }, expect: 200 });
  await call("PATCH", `/api/webhooks/${id}`, { json: { name: "Other" }, expect: 409 });
  await call("PATCH", `/api/webhooks/${id}`, { json: { active: "yes" }, expect: 400 });

  // --- events, logs, test, redelivery
  await call("POST", "/api/events", { json: { type: "create", object_id: 42, after: { load: 2.4, ram: 12.0 } }, expect: 202 });
  await call("POST", "/api/events", { json: { type: "merge", object_id: 42 }, expect: 400 });
  await call("GET", "/api/events", { expect: 405 });
  await until("the event's delivery in the log", async () => {
    const page = await (await fetch(`${base}/api/logs?outcome=delivered`, { headers: { Authorization: `Bearer ${token}` } })).json();
    return page.entries?.length > 0;
  });
  const logs = await call("GET", `/api/logs?webhook=${id}&event=create&outcome=delivered&limit=10`, { expect: 200 });
  await call("GET", "/api/logs?limit=0", { expect: 400 });
  await call("POST", "/api/logs", { expect: 405 });
  const entry = logs.body?.entries?.[0];
  await call("GET", `/api/logs/${entry?.id}`, { expect: 200 });
  await call("GET", `/api/logs/${entry?.delivery_id}`, { expect: 200 });
  await call("GET", "/api/logs/999999", { expect: 404 });
  await call("DELETE", `/api/logs/${entry?.id}`, { expect: 405 });
  await call("POST", `/api/webhooks/${id}/test`, { expect: 200 });
  await call("POST", `/api/webhooks/${id}/test`, { json: { type: "update" }, expect: 200 });
  await call("POST", `/api/webhooks/${id}/test`, { json: { type: "merge" }, expect: 400 });
  await call("POST", "/api/webhooks/999999/test", { expect: 404 });
  await call("GET", `/api/webhooks/${id}/test`, { expect: 405 });
  await call("POST", `/api/deliveries/${entry?.delivery_id}/redeliver`, { expect: 200 });
  await call("POST", "/api/deliveries/dlv_nothing/redeliver", { expect: 404 });
  await call("GET", `/api/deliveries/${entry?.delivery_id}/redeliver`, { expect: 405 });

  // a double in an API body: the success rate of a webhook whose deliveries all succeeded
  const hook = await call("GET", `/api/webhooks/${id}`, { expect: 200 });
  if (!hook.text.includes('"success_rate_24h":1.0')) {
    ++failures;
    console.error(`FAIL the success rate is not written as 1.0: ${hook.text}`);
  }

  await call("DELETE", `/api/webhooks/${other.body?.id}`, { expect: 204 });
  await call("DELETE", `/api/webhooks/${other.body?.id}`, { expect: 404 });

  // every operation of the document answered with a 2xx
  for (const [template, item] of Object.entries(doc.paths))
    for (const method of ["get", "put", "post", "delete", "patch"])
      if (item[method] && !answered.has(`${method.toUpperCase()} ${template}`)) {
        ++failures;
        console.error(`FAIL ${method.toUpperCase()} ${template} was never answered with a 2xx`);
      }
} catch (e) {
  ++failures;
  console.error(`openapi test: ${e.stack || e}`);
}
clearTimeout(deadline);
if (failures)
  for (const c of children) console.error(`--- ${c.label} stderr ---\n${c.err}`);
await stopAll();
if (failures) fail(`${failures} failures`);
log("every answer is as the document says");
process.exit(0); // fetch's idle keep-alive sockets would hold the process for seconds
