// The dashboard in a real headless browser (Debian's Chromium, driven by playwright-core).
//
// Expects `target/debug/jobspool` built (`cargo build`); builds nothing itself. Seeds a
// database with the CLI, starts `jobspool serve --http 127.0.0.1:0`, and checks the pages
// against the CLI's answers (which reach the served database through its control socket).
// Fails on any console error, page error or CSP violation. Screenshots go to
// target/browser/. Run: `node tests/browser/dashboard.mjs` from the repository (or `npm
// test` in tests/browser). JOBSPOOL_CHROMIUM overrides the browser path.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = path.join(repo, "target", "debug", "jobspool");
const shots = path.join(repo, "target", "browser");
const browserPath = process.env.JOBSPOOL_CHROMIUM || "/usr/bin/chromium";
const started = Date.now();

function fail(msg) {
  throw new Error(msg);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

function step(msg) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
}

if (!fs.existsSync(bin)) fail(`${bin} is missing: run cargo build first`);
if (!fs.existsSync(browserPath)) fail(`${browserPath} is missing: apt-get install -y chromium`);
fs.mkdirSync(shots, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "jobspool-browser-"));
const db = path.join(tmp, "db");

/** Runs the CLI with --json and returns the parsed stdout (or the raw text). */
function cli(...args) {
  const out = execFileSync(bin, ["--db", db, "--json", ...args], {
    encoding: "utf8",
    timeout: 20000,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    return JSON.parse(out);
  } catch {
    return out;
  }
}

/** A count as the page shows it ("1 234" with thin spaces) as a number. */
const num = (s) => Number(String(s).replace(/[^\d]/g, ""));

let server = null;
let browser = null;
const problems = [];
const dialogs = [];

async function main() {
  // --- Seed: ready, delayed, dead, completed jobs and a schedule, before the server runs.
  step("seeding with the CLI");
  for (let i = 0; i < 3; i++) {
    cli("enqueue", "--type", "email.send", "--queue", "mail", "--payload", JSON.stringify({ to: `u${i}@example.com` }));
  }
  for (let i = 0; i < 2; i++) {
    cli("enqueue", "--type", "report.build", "--queue", "reports", "--tenant-id", "acme", "--payload", `{"n":${i}}`);
  }
  cli("enqueue", "--type", "report.build", "--queue", "reports", "--tenant-id", "other", "--payload", "{}");
  cli("enqueue", "--type", "<script>alert(1)</script>", "--payload", JSON.stringify({ html: "<script>alert(2)</script>" }));
  cli("enqueue", "--type", "later", "--delay", "3600", "--payload", "{}");
  const dead = cli("enqueue", "--type", "flaky", "--queue", "mail", "--max-retries", "1", "--payload", '{"try":1}');
  cli("enqueue", "--type", "ok.job", "--payload", '{"fine":true}');
  cli("work", "--handler", "flaky=echo boom >&2; exit 3", "--handler", "ok.job=cat", "--stop-when-empty");
  check(cli("get", dead.id).status === "dead_letter", "the flaky job did not dead-letter");
  cli("schedule", "create", "--name", "nightly", "--cron", "0 3 * * *", "--job-type", "report.build", "--timezone", "Europe/Berlin");

  // --- Serve; the first stdout line names the URL with the token.
  step("starting jobspool serve");
  server = spawn(bin, ["--db", db, "serve", "--http", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no URL from serve in 10 s; stderr: ${stderr}`)), 10000);
    server.stdout.on("data", (d) => {
      buf += d;
      const line = buf.split("\n")[0];
      if (buf.includes("\n")) {
        clearTimeout(timer);
        const m = line.match(/(http:\/\/\S+)/);
        m ? resolve(m[1]) : reject(new Error(`unexpected first line: ${line}`));
      }
    });
    server.on("exit", (code) => reject(new Error(`serve exited with ${code}; stderr: ${stderr}`)));
  });
  const base = new URL(url).origin;
  step(`serving at ${base}`);

  // The CLI reaches the held database through the control socket.
  const stats = cli("stats");
  check(stats.pending === 8 && stats.deadLetter === 1 && stats.completed === 1, `unexpected stats ${JSON.stringify(stats)}`);

  browser = await chromium.launch({
    executablePath: browserPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // CSP violations also reach the console (the browser logs them as errors); this makes
  // sure none is missed.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.accept();
  });

  // --- Log in with the token URL; it lands on the overview without the token.
  step("overview");
  await page.goto(url);
  check(!page.url().includes("token="), `the token stayed in the address: ${page.url()}`);
  await page.waitForSelector("[data-count=pending]");
  const shown = async () =>
    Object.fromEntries(
      await page.$$eval("[data-count]", (els) => els.map((e) => [e.getAttribute("data-count"), e.textContent])),
    );
  const counts = await shown();
  const want = {
    pending: stats.pending,
    delayed: stats.delayed,
    running: stats.running,
    completed: stats.completed,
    failed: stats.failed,
    dead_letter: stats.deadLetter,
    cancelled: stats.cancelled,
  };
  for (const [k, v] of Object.entries(want)) {
    check(num(counts[k]) === v, `overview ${k} = ${counts[k]}, stats --json says ${v}`);
  }
  for (const [queue, q] of Object.entries(stats.queues)) {
    const cell = await page.textContent(`tr[data-queue="${queue}"] a[data-status=pending]`);
    check(num(cell) === q.pending, `queue ${queue}: pending ${cell}, stats says ${q.pending}`);
  }
  check((await page.$$("svg.chart polyline")).length === 3, "the throughput chart is missing");
  await page.screenshot({ path: path.join(shots, "overview-1280.png"), fullPage: true });

  // --- Live refresh: a job enqueued from the CLI shows within one refresh (1 s).
  step("live refresh");
  await page.selectOption("#refresh", "1");
  cli("enqueue", "--type", "email.send", "--queue", "mail", "--payload", "{}");
  await page.waitForFunction(
    (n) => Number(document.querySelector("[data-count=pending]").textContent.replace(/[^\d]/g, "")) === n,
    stats.pending + 1,
    { timeout: 2500 },
  );
  check((await page.evaluate(() => localStorage.getItem("jobspool.refresh"))) === "1", "the interval was not kept");
  // The interval holds across pages; on the job list the new job's row appears by itself.
  await page.goto(`${base}/jobs?queue=mail`);
  check((await page.inputValue("#refresh")) === "1", "the interval picker forgot its value");
  const fresh = cli("enqueue", "--type", "email.send", "--queue", "mail", "--payload", '{"live":true}');
  await page.waitForSelector(`#jobs tr[data-id="${fresh.id}"]`, { timeout: 2500 });

  // --- Filter the job list.
  step("jobs: filter");
  await page.goto(`${base}/jobs`);
  const escapedType = await page.textContent("#jobs");
  check(escapedType.includes("<script>alert(1)</script>"), "the <script> job type is not shown as text");
  check((await page.$$("script:not([src])")).length === 0, "an inline script appeared in the page");
  await page.selectOption("select[name=status]", "pending");
  await page.fill("input[name=queue]", "reports");
  await page.fill("input[name=tenant]", "acme");
  await Promise.all([page.waitForNavigation(), page.click("form.filters button[type=submit]")]);
  const rows = await page.$$eval("#jobs tbody tr", (trs) => trs.map((t) => t.getAttribute("data-status")));
  const listed = cli("list", "--status", "pending", "--queue", "reports");
  const acme = listed.jobs ? listed.jobs : listed;
  const wantRows = (Array.isArray(acme) ? acme : []).filter((j) => j.tenantId === "acme").length;
  check(rows.length === 2 && wantRows === 2 && rows.every((s) => s === "pending"), `filter shows ${JSON.stringify(rows)}`);
  await page.screenshot({ path: path.join(shots, "jobs-1280.png"), fullPage: true });

  // --- Bulk: one ticked job (confirmed in a dialog), then all matching (a confirmation page).
  step("jobs: bulk cancel");
  const filtered = page.url();
  await page.check("#jobs tbody tr:first-child input[type=checkbox]");
  await Promise.all([page.waitForNavigation(), page.click("#bulk button[value=cancel]")]);
  check(dialogs.some((m) => m === "Cancel 1 selected job?"), `no selection dialog: ${JSON.stringify(dialogs)}`);
  check((await page.textContent(".flash.ok")).includes("Cancelled 1 job."), "no flash after the bulk cancel");
  check(page.url() === filtered, `not back on the filtered list: ${page.url()}`);
  await Promise.all([page.waitForNavigation(), page.click("form.bulk button:has-text('Cancel all')")]);
  check((await page.getAttribute("#bulk-count", "data-count")) === "1", "the confirmation does not count 1 job");
  await page.screenshot({ path: path.join(shots, "confirm-1280.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("#confirm button[type=submit]")]);
  check((await page.textContent(".flash.ok")).includes("Cancelled 1 job."), "no flash after cancel all");
  const reports = cli("list", "--queue", "reports");
  const byTenant = (reports.jobs || reports).map((j) => `${j.tenantId}:${j.status}`).sort();
  check(
    JSON.stringify(byTenant) === JSON.stringify(["acme:cancelled", "acme:cancelled", "other:pending"]),
    `after the bulk cancels the CLI lists ${JSON.stringify(byTenant)}`,
  );

  // --- A dead job: its attempt and error, then redrive (confirmed).
  step("dead letter: open and redrive");
  await page.goto(`${base}/dead`);
  await page.screenshot({ path: path.join(shots, "dead-1280.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click(`#jobs tr[data-id="${dead.id}"] a`)]);
  const err = await page.textContent("#last-error");
  check(err.includes("boom") || err.includes("3"), `last error not shown: ${err}`);
  check((await page.$$("#executions tbody tr")).length === 1, "the execution is not listed");
  check((await page.$$("#events tbody tr")).length >= 3, "the job's events are not listed");
  await page.screenshot({ path: path.join(shots, "dead-job-1280.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("form[action='/actions/redrive'] button")]);
  check(dialogs.some((m) => m.includes("back to pending")), `no confirmation asked: ${JSON.stringify(dialogs)}`);
  check((await page.textContent(".flash.ok")).includes("Redriven"), "no flash after redrive");
  check(cli("get", dead.id).status === "pending", "the CLI does not see the redriven job pending");

  // --- Toggle a schedule.
  step("schedules: toggle");
  await page.goto(`${base}/schedules`);
  check((await page.getAttribute("tr[data-schedule=nightly]", "data-enabled")) === "true", "schedule not enabled");
  await Promise.all([
    page.waitForNavigation(),
    page.click("tr[data-schedule=nightly] form[action='/actions/schedule-toggle'] button"),
  ]);
  check((await page.getAttribute("tr[data-schedule=nightly]", "data-enabled")) === "false", "toggle not shown");
  const sched = cli("schedule", "list").schedules.find((s) => s.name === "nightly");
  check(sched && sched.enabled === false, "the CLI still sees the schedule enabled");
  await page.screenshot({ path: path.join(shots, "schedules-1280.png"), fullPage: true });

  // --- The event tail follows the log over Server-Sent Events.
  step("events: live tail");
  await page.goto(`${base}/events`);
  // The stream starts after the newest event the page shows, so nothing is missed even if
  // the job comes before the stream is open.
  const tailJob = cli("enqueue", "--type", "tail.check", "--payload", "{}");
  await page.waitForSelector(`#events a[href="/jobs/${tailJob.id}"]`, { timeout: 5000 });
  // After a reload the page shows it from the log, and the stream goes on from there.
  await page.reload();
  await page.waitForSelector(`#events a[href="/jobs/${tailJob.id}"]`, { timeout: 5000 });
  const next = cli("enqueue", "--type", "tail.check", "--payload", "{}");
  await page.waitForSelector(`#events a[href="/jobs/${next.id}"]`, { timeout: 5000 });
  const seqs = await page.$$eval("#events tbody tr", (trs) => trs.map((t) => Number(t.getAttribute("data-seq"))));
  check(new Set(seqs).size === seqs.length, `an event is shown twice: ${seqs}`);
  await page.screenshot({ path: path.join(shots, "events-1280.png"), fullPage: true });

  // --- Phone width.
  step("phone width screenshots");
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [name, p] of [["overview", "/"], ["jobs", "/jobs"], ["job", `/jobs/${dead.id}`]]) {
    await page.goto(`${base}${p}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, `${p} is ${wide}px wide at 390px`);
    await page.screenshot({ path: path.join(shots, `${name}-390.png`), fullPage: true });
  }

  check(problems.length === 0, `browser problems:\n  ${problems.join("\n  ")}`);
}

async function stop() {
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.on("exit", r));
    process.kill(server.pid, "SIGTERM");
    let timer;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer);
    if (server.exitCode === null) process.kill(server.pid, "SIGKILL");
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

try {
  await main();
  await stop();
  step(`ok; screenshots in ${path.relative(repo, shots)}/`);
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  console.error(`dialogs: ${JSON.stringify(dialogs)}`);
  for (const p of problems) console.error(`  ${p}`);
  await stop();
  process.exit(1);
}
