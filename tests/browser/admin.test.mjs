// The admin page in a real browser: Debian's headless Chromium driven by playwright-core,
// against a real herald-relay --admin process delivering to a real herald-receiver on loopback.
//
//   node admin.test.mjs --relay PATH --receiver PATH --out DIR [--chromium /usr/bin/chromium]
//
// Scenario: sign in (by the form and by a #token= link opened in a tab already showing the page,
// or in a new one), create a webhook through the form (after a validation error the API names),
// publish an event through the API, see its row in View Logs, open it, redeliver it, see the
// second attempt. Screenshots go to DIR. Every wait is on a condition with a generous deadline:
// the machine may be slow and loaded; nothing asserts on a fixed sleep.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
for (const required of ["relay", "receiver", "out"])
  if (!args[required]) fail(`--${required} is required`);
const chromiumPath = args.chromium || "/usr/bin/chromium";
const WAIT = 60_000; // generous: a loaded CI machine with sanitizers is slow

let playwright;
try {
  playwright = await import("playwright-core");
} catch {
  fail("playwright-core is not installed: run ./scripts/test, or npm ci --prefix tests/browser");
}
if (!existsSync(chromiumPath))
  fail(`no Chromium at ${chromiumPath}: run ./scripts/test (it installs the Debian package chromium)`);

function fail(message) {
  console.error(`browser test: ${message}`);
  process.exit(1);
}
function log(message) {
  console.log(`browser test: ${message}`);
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `ms`. */
async function until(what, probe, ms = WAIT) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

// ---------- the processes ----------
const work = mkdtempSync(join(tmpdir(), "herald-browser-"));
mkdirSync(args.out, { recursive: true });
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

const receiver = start("herald-receiver", args.receiver, ["--port", "0", "--port-file", join(work, "port"), "--status", "200"]);
const receiverPort = await until("herald-receiver's port file", () =>
  existsSync(join(work, "port")) && readFileSync(join(work, "port"), "utf8").trim());
const hookUrl = `http://127.0.0.1:${receiverPort}/api/object-created`;

// Standard input is closed from the start: with --admin the relay keeps running regardless.
const relay = start("herald-relay", args.relay, [
  "--admin", "127.0.0.1:0", "--admin-token-file", join(work, "token"),
  "--allow-private", "127.0.0.1/32", "--retry-schedule", "0s,1s", "--drain-timeout", "5s"]);
const base = await until("herald-relay to print the admin address", () => {
  const m = relay.err.match(/admin page and API on (http:\/\/127\.0\.0\.1:\d+\/)/);
  return m && m[1];
});
log(`relay admin at ${base}, receiver on port ${receiverPort}`);

async function api(method, path, body) {
  const res = await fetch(new URL(path, base), {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
const received = () => receiver.out.split("\n").filter(Boolean).map((l) => JSON.parse(l));

// ---------- the browser ----------
const browser = await playwright.chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  // root in a container: Chromium's sandbox needs namespaces it may not have
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(WAIT);
const consoleErrors = [];
// Script errors fail the test; the browser's own notes on the 401 and 400 the scenario
// provokes on purpose do not.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));
/**
 * Opens `${base}#token=${value}` in the tab as a same-document navigation (a marker set on the
 * window before must survive it: nothing reloaded), then checks the token left the address bar
 * and the tab keeps `value`.
 */
async function signInByLink(value) {
  await page.evaluate(() => { window.heraldSameDocument = true; });
  await page.goto(`${base}#token=${encodeURIComponent(value)}`);
  await until("the token to leave the address bar", async () => !page.url().includes("token="), 10_000);
  const kept = await page.evaluate(() => ({
    same: window.heraldSameDocument === true, hash: location.hash, href: location.href,
    token: sessionStorage.getItem("herald-admin-token"),
  }));
  if (!kept.same) throw new Error("the link reloaded the page: the test needs a hashchange");
  if (kept.href.includes(value) || kept.hash !== "#/webhooks")
    throw new Error(`the token stayed in the address: ${kept.href}`);
  // A wrong token is dropped again when the API refuses it.
  if (kept.token !== value && kept.token !== null)
    throw new Error(`the tab holds another token than the link's: ${kept.token}`);
}
let shot = 0;
async function screenshot(name) {
  const file = join(args.out, `${String(++shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

async function scenario() {
  // Sign in.
  await page.goto(base);
  await page.locator("#signin").waitFor({ state: "visible" });
  await screenshot("sign-in");
  await page.fill("#token", "not-the-token-at-all");
  await page.click("#signin-form button[type=submit]");
  await page.locator("#signin-error", { hasText: "not accepted" }).waitFor();

  // The link herald-relay prints, opened in this tab that already shows the page: only the
  // fragment changes, so the page is not loaded again and must take the token on hashchange.
  await signInByLink(token);
  await page.locator("#webhooks-body", { hasText: "No webhooks yet" }).waitFor();

  // The form signs in as well.
  await page.click("#signout");
  await page.locator("#signin").waitFor({ state: "visible" });
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#webhooks-body", { hasText: "No webhooks yet" }).waitFor();
  await screenshot("empty-table");

  // Create a webhook through the form; first with a URL the API refuses.
  await page.click("#create");
  const dialog = page.locator("#webhook-dialog");
  await dialog.waitFor({ state: "visible" });
  await page.fill("#f-name", "Notify inventory on create");
  await page.fill("#f-url", "ftp://inventory.example.com/hooks");
  await page.check("input[name=event-create]");
  await page.check("input[name=event-update]");
  await page.click("#add-secret");
  await page.click("#add-header");
  await page.fill("#headers .hname", "X-Api-Key");
  await page.fill("#headers .hvalue", "k-123456");
  await page.click("#form-submit");
  const urlError = page.locator('.err[data-field="url"]');
  await urlError.waitFor({ state: "visible" });
  const message = await urlError.textContent();
  if (message.trim() !== "scheme 'ftp' is not http or https")
    throw new Error(`the URL's error names the field and the problem, got: ${message}`);
  await screenshot("validation-error");
  await page.fill("#f-url", hookUrl);
  await page.click("#form-submit");
  await dialog.waitFor({ state: "hidden" });
  const row = page.locator("#webhooks-body tr", { hasText: "Notify inventory on create" });
  await row.waitFor();
  const id = await row.getAttribute("data-id");
  const listed = await api("GET", `/api/webhooks/${id}`);
  if (listed.status !== 200 || listed.body.url !== hookUrl || listed.body.secrets.length !== 1 ||
      listed.body.events.join() !== "create,update" || listed.body.headers["X-Api-Key"] !== "…")
    throw new Error(`the webhook was not stored as entered: ${JSON.stringify(listed)}`);

  // Publish an event through the API, the way a producer in another language does.
  const published = await api("POST", "/api/events", {
    type: "create", object_id: 1001, object_type: "server", actor: "alice",
    after: { hostname: "web-01", ip: "10.0.0.11" },
  });
  if (published.status !== 202) throw new Error(`publish: ${JSON.stringify(published)}`);
  const eventId = published.body.id;
  await until("the receiver to get the event", () => received().some((r) => r.headers["webhook-id"] === eventId));

  // View Logs: its row, delivered.
  await page.click("#view-logs-button");
  await page.locator("#view-logs").waitFor({ state: "visible" });
  const entries = page.locator("#logs-body tr.entry");
  await until("the delivery's row in View Logs", async () => {
    if ((await entries.count()) >= 1) return true;
    await page.click("#logs-refresh");
    return false;
  });
  const first = entries.first();
  const firstText = await first.textContent();
  for (const expected of ["Notify inventory on create", "create", "1001", "200", "delivered"])
    if (!firstText.includes(expected)) throw new Error(`the log row lacks ${expected}: ${firstText}`);
  const firstDelivery = await first.getAttribute("data-delivery");
  await screenshot("view-logs");

  // Open it: the request as sent, the credential header masked, and the response.
  await first.click();
  const detail = page.locator("#logs-body tr.detail");
  await detail.locator("pre", { hasText: '"object_id": "1001"' }).waitFor();
  const detailText = await detail.textContent();
  if (!detailText.includes(`webhook-id: ${eventId}`) || !detailText.includes("X-Api-Key: …") ||
      detailText.includes("k-123456"))
    throw new Error(`the opened row shows the request with secrets masked: ${detailText}`);
  await screenshot("log-entry-open");

  // Redeliver: a second attempt of the same event, under a new delivery id.
  await first.locator("button", { hasText: "Redeliver" }).click();
  await until("the redelivered attempt in View Logs", async () => (await entries.count()) >= 2);
  const second = entries.first();
  const secondDelivery = await second.getAttribute("data-delivery");
  if (secondDelivery === firstDelivery) throw new Error("redelivery reused the delivery id");
  if (!(await second.textContent()).includes("delivered")) throw new Error("the redelivery did not arrive");
  const copies = await until("the receiver to get the event twice", () => {
    const got = received().filter((r) => r.headers["webhook-id"] === eventId);
    return got.length >= 2 && got;
  });
  if (JSON.stringify(copies[0].body) !== JSON.stringify(copies[1].body))
    throw new Error("the redelivered body differs from the first");
  await page.locator(".toast", { hasText: "Redelivered" }).waitFor();
  await screenshot("redelivered");

  // Filters: the webhook's failed attempts are none.
  await page.selectOption("#filter-outcome", "failed");
  await page.click("#filters button[type=submit]");
  await page.locator("#logs-body", { hasText: "No attempts match" }).waitFor();
  await page.click("#filters-reset");
  await until("the reset filters to list both attempts", async () => (await entries.count()) >= 2);

  // Back on the table: last delivery and the day's success rate; then Test.
  await page.click('nav a[data-view="webhooks"]');
  await row.locator("text=100%").waitFor();
  await row.locator("button", { hasText: "Test" }).click();
  await page.locator(".toast", { hasText: "Test event delivered" }).waitFor();
  await until("the receiver to get the test event", () =>
    received().some((r) => r.body && r.body.object_id === "herald-test"));
  await screenshot("webhooks-table");

  // A link with another token replaces the one the signed-in tab holds (the relay may have been
  // restarted with a new one): the data is loaded again with it, so a wrong one signs out...
  await signInByLink("not-the-token-either");
  await page.locator("#signin-error", { hasText: "not accepted" }).waitFor();
  // ...and the right one signs in again, on the table, from the View Logs page as well.
  await signInByLink(token);
  await row.waitFor();
  await page.click("#view-logs-button");
  await page.locator("#view-logs").waitFor({ state: "visible" });
  await signInByLink(token);
  await page.locator("#view-webhooks").waitFor({ state: "visible" });
  await row.waitFor();

  // A fresh load with the link: a new tab, whose session storage starts empty.
  const fresh = await context.newPage();
  await fresh.goto(`${base}#token=${encodeURIComponent(token)}`);
  await fresh.locator("#webhooks-body tr", { hasText: "Notify inventory on create" }).waitFor();
  if (fresh.url().includes(token)) throw new Error(`the token stayed in the address: ${fresh.url()}`);
  await fresh.close();

  // Edit, deactivate, delete with confirmation.
  await row.locator("button", { hasText: "Edit" }).click();
  await dialog.waitFor({ state: "visible" });
  await page.fill("#f-name", "Inventory (renamed)");
  // The format select offers the dispatcher's formats, the default first.
  const formats = await page.locator("#f-format option").allTextContents();
  if (formats.join() !== "default (herald),herald,datagerry")
    throw new Error(`the format select offers the dispatcher's formats, got: ${formats}`);
  await page.selectOption("#f-format", "datagerry");
  await page.fill("#f-retry", "0s, 1m, 10m");
  await screenshot("edit-form");
  await page.click("#form-submit");
  await dialog.waitFor({ state: "hidden" });
  const renamed = page.locator("#webhooks-body tr", { hasText: "Inventory (renamed)" });
  await renamed.waitFor();
  const kept = await api("GET", `/api/webhooks/${id}`);
  if (kept.body.secrets.length !== 1 || kept.body.headers["X-Api-Key"] !== "…")
    throw new Error(`editing the name kept the secret and header: ${JSON.stringify(kept.body)}`);
  if (kept.body.format !== "datagerry" || kept.body.retry_schedule.join() !== "0s,1m,10m")
    throw new Error(`the format and retry schedule were stored: ${JSON.stringify(kept.body)}`);
  // The form shows them back, and the default clears them.
  await renamed.locator("button", { hasText: "Edit" }).click();
  await dialog.waitFor({ state: "visible" });
  if ((await page.inputValue("#f-format")) !== "datagerry" ||
      (await page.inputValue("#f-retry")) !== "0s, 1m, 10m")
    throw new Error("the edit form shows the stored format and retry schedule");
  await page.selectOption("#f-format", "");
  await page.fill("#f-retry", "");
  await page.click("#form-submit");
  await dialog.waitFor({ state: "hidden" });
  const cleared = await api("GET", `/api/webhooks/${id}`);
  if ("format" in cleared.body || "retry_schedule" in cleared.body)
    throw new Error(`the default clears format and retry_schedule: ${JSON.stringify(cleared.body)}`);
  await renamed.locator(".switch").click();
  await renamed.locator("text=Not active").waitFor();
  if ((await api("GET", `/api/webhooks/${id}`)).body.active !== false) throw new Error("not deactivated");
  await renamed.locator("button", { hasText: "Delete" }).click();
  await page.locator("#delete-dialog").waitFor({ state: "visible" });
  await screenshot("delete-confirmation");
  await page.click("#delete-cancel");
  if ((await api("GET", `/api/webhooks/${id}`)).status !== 200) throw new Error("cancel deleted it");
  await renamed.locator("button", { hasText: "Delete" }).click();
  await page.click("#delete-confirm");
  await page.locator("#webhooks-body", { hasText: "No webhooks yet" }).waitFor();
  if ((await api("GET", `/api/webhooks/${id}`)).status !== 404) throw new Error("not deleted");
  if (consoleErrors.length) throw new Error(`the page logged errors: ${consoleErrors.join("; ")}`);
}

let failed = null;
try {
  await scenario();
} catch (e) {
  failed = e;
  try { await page.screenshot({ path: join(args.out, "failure.png"), fullPage: true }); } catch {}
}
await browser.close();

// The relay keeps running after standard input closed; SIGTERM drains and stops it.
const stillRunning = relay.exitCode === null;
relay.kill("SIGTERM");
const relayExit = await Promise.race([relay.exited, sleep(30_000).then(() => null)]);
receiver.kill("SIGTERM");
await Promise.race([receiver.exited, sleep(10_000)]);
for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
rmSync(work, { recursive: true, force: true });

if (!failed && !stillRunning) failed = new Error("herald-relay --admin exited when its standard input closed");
if (!failed && (!relayExit || relayExit.code !== 0))
  failed = new Error(`herald-relay did not stop cleanly on SIGTERM: ${JSON.stringify(relayExit)}`);
if (failed) {
  console.error(`browser test: FAILED: ${failed.message}`);
  console.error(`--- herald-relay stderr ---\n${relay.err}`);
  console.error(`--- herald-receiver stderr ---\n${receiver.err}`);
  if (consoleErrors.length) console.error(`--- page console ---\n${consoleErrors.join("\n")}`);
  process.exit(1);
}
log(`passed; screenshots in ${args.out}`);
