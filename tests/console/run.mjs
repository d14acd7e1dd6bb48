// Browser tests of the web console: the real `portcullis server` (PORTCULLIS_BIN, default
// target/debug/portcullis) on a free port, Debian's Chromium driven by playwright-core.
// Prints each test, writes screenshots of each page to CONSOLE_SCREENSHOTS (default
// target/console-screenshots), and ends with `N passed, N failed`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { Aws, xmlValue } from "./aws.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.resolve(ROOT, process.env.PORTCULLIS_BIN || "target/debug/portcullis");
const SHOTS = path.resolve(ROOT, process.env.CONSOLE_SCREENSHOTS || "target/console-screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ACCOUNT = "123456789012";
const REGION = "ap-northeast-1";
const TEST_NODE = "i-0885b2e35926f1fb3";
const PROD_NODE = "i-0123456789abcdef0";
const PASSWORD = "Console-test-password-1";
const TEST_TIMEOUT_MS = 30_000;

// ---- the server and the world the tests share ------------------------------------------

async function startServer(dataDir) {
  const proc = spawn(BIN, ["server", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--seed"], {
    env: { ...process.env, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const lines = readline.createInterface({ input: proc.stdout });
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start in time: " + stderr)), 30_000);
    lines.on("line", (line) => {
      const m = line.match(/listening on (https?:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}): ${stderr}`)); });
  });
  lines.on("line", () => {}); // keep draining stdout
  return { proc, endpoint };
}

function credentials(dataDir) {
  const profiles = {};
  let current = null;
  for (const line of fs.readFileSync(path.join(dataDir, "credentials"), "utf8").split("\n")) {
    const section = line.match(/^\[(.+)\]$/);
    if (section) { current = profiles[section[1]] = {}; continue; }
    const kv = line.match(/^\s*(\w+)\s*=\s*(.*?)\s*$/);
    if (kv && current) current[kv[1]] = kv[2];
  }
  const keys = (p) => [profiles[p].aws_access_key_id, profiles[p].aws_secret_access_key];
  return { admin: keys("portcullis-admin"), testusera: keys("testusera") };
}

async function post(endpoint, urlPath, body, headers) {
  const r = await fetch(endpoint + urlPath, {
    method: "POST", headers: { "content-type": "application/json", ...(headers || {}) }, body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Stands in for the agent, as tests/e2e/conftest.py does: register through the agent's
// endpoint with an activation, send heartbeats, tag the instance through EC2.
async function registerNode(endpoint, admin, instanceId, tags) {
  const act = await admin.ssm("CreateActivation", { IamRole: "SSMServiceRole", RegistrationLimit: 1 });
  const reg = await post(endpoint, "/v1/nodes/register", {
    ActivationId: act.ActivationId, ActivationCode: act.ActivationCode, InstanceId: instanceId,
    Hostname: "node-" + instanceId, Platform: "Linux", AgentVersion: "0.1.0", IpAddress: "10.0.0.1",
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  const auth = { authorization: `Bearer ${reg.body.NodeId}:${reg.body.Credential}` };
  const beat = async () => (await fetch(endpoint + "/v1/nodes/heartbeat", { method: "POST", headers: { "content-type": "application/json", ...auth }, body: "{}" })).status;
  assert.equal(await beat(), 204);
  setInterval(beat, 20_000).unref();
  const params = { "ResourceId.1": instanceId };
  Object.entries(tags).forEach(([k, v], i) => { params[`Tag.${i + 1}.Key`] = k; params[`Tag.${i + 1}.Value`] = v; });
  await admin.query("ec2", "CreateTags", params);
}

async function setUp(endpoint, dataDir) {
  const keys = credentials(dataDir);
  const admin = new Aws(endpoint, REGION, ...keys.admin);
  const userA = new Aws(endpoint, REGION, ...keys.testusera);
  // The seed made TestUserA (Project=test, ReadOnlyAccess, the ABAC policy); give it a
  // console password. TestUserB may do anything in SSM; NoPerms may do nothing at all.
  await admin.query("iam", "CreateLoginProfile", { UserName: "TestUserA", Password: PASSWORD });
  await admin.query("iam", "CreateUser", { UserName: "TestUserB" });
  await admin.query("iam", "AttachUserPolicy", { UserName: "TestUserB", PolicyArn: "arn:aws:iam::aws:policy/AmazonSSMFullAccess" });
  const keyB = await admin.query("iam", "CreateAccessKey", { UserName: "TestUserB" });
  const userB = new Aws(endpoint, REGION, xmlValue(keyB, "AccessKeyId"), xmlValue(keyB, "SecretAccessKey"));
  await admin.query("iam", "CreateUser", { UserName: "NoPerms" });
  await admin.query("iam", "CreateLoginProfile", { UserName: "NoPerms", Password: PASSWORD });
  await registerNode(endpoint, admin, TEST_NODE, { Project: "test", Name: "web-1" });
  await registerNode(endpoint, admin, PROD_NODE, { Project: "prod" });
  const start = async (who, reason) => (await who.ssm("StartSession", { Target: TEST_NODE, Reason: reason })).SessionId;
  return {
    admin,
    keys,
    ownSession: await start(userA, "console test: terminate own"),
    csrfSession: await start(userA, "console test: CSRF target"),
    otherSession: await start(userB, "console test: someone else's"),
  };
}

async function sessionStatus(admin, id) {
  for (const state of ["Active", "History"]) {
    const r = await admin.ssm("DescribeSessions", { State: state, Filters: [{ key: "SessionId", value: id }] });
    if (r.Sessions.length) return r.Sessions[0].Status;
  }
  return null;
}

// ---- helpers for pages ------------------------------------------------------------------

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function ready(page) {
  await page.waitForSelector("body[data-ready=true]", { timeout: 10_000 });
}

async function signInWithPassword(page, user, password) {
  await page.goto("/console/signin");
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("#form-password button[type=submit]");
  await page.waitForURL("**/console/nodes");
  await ready(page);
}

function isSignInPage(page) {
  return new URL(page.url()).pathname === "/console/signin";
}

// ---- the tests ------------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("no cookie: pages redirect to sign-in, the API says 401", async ({ page, world }) => {
  for (const p of ["/console/nodes", "/console/sessions", "/console/"]) {
    await page.goto(p);
    assert.ok(isSignInPage(page), `${p} went to ${page.url()}`);
  }
  await page.goto("/console/sessions");
  assert.equal(new URL(page.url()).searchParams.get("next"), "/console/sessions");
  assert.ok(await page.isVisible("#user"));
  assert.ok(!(await page.isVisible("#access-key-id")), "one sign-in form at a time");
  await shot(page, "signin");
  for (const p of ["/console/api/me", "/console/api/nodes", "/console/api/sessions"]) {
    const r = await page.request.get(world.endpoint + p);
    assert.equal(r.status(), 401, p);
    assert.equal((await r.json()).code, "NotSignedIn");
  }
});

test("a forged cookie is refused", async ({ page, context, world }) => {
  await context.addCookies([{ name: "portcullis_console", value: "A".repeat(43), url: world.endpoint + "/console/" }]);
  await page.goto("/console/nodes");
  assert.ok(isSignInPage(page), page.url());
  const r = await page.request.get(world.endpoint + "/console/api/sessions");
  assert.equal(r.status(), 401);
});

test("a wrong password gets AWS's sign-in message", async ({ page }) => {
  await page.goto("/console/signin");
  await page.fill("#user", "TestUserA");
  await page.fill("#password", "not the password");
  await page.click("#form-password button[type=submit]");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error"), "Your authentication information is incorrect. Please try again.");
  assert.ok(isSignInPage(page));
  await shot(page, "signin-refused");
});

test("TestUserA signs in with a password; the session cookie is HttpOnly and SameSite=Strict", async ({ page, context, world }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  assert.match(await page.textContent("#who"), /^TestUserA · 123456789012$/);
  const cookies = await context.cookies(world.endpoint + "/console/");
  const c = cookies.find((c) => c.name === "portcullis_console");
  assert.ok(c, JSON.stringify(cookies));
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, "Strict");
  assert.equal(c.path, "/console");
  assert.ok(c.value.length >= 43);
  assert.equal(await page.evaluate(() => document.cookie), "", "the page's script cannot read it");
});

test("Nodes page lists the nodes with id, name, platform, ping status and tags; filter by tag", async ({ page }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  const rows = await page.$$eval("#nodes tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  const byId = Object.fromEntries(rows.map((r) => [r[0], r]));
  assert.deepEqual(Object.keys(byId).sort(), [PROD_NODE, TEST_NODE].sort());
  assert.equal(byId[TEST_NODE][1], "node-" + TEST_NODE);
  assert.match(byId[TEST_NODE][2], /^Linux/);
  assert.equal(byId[TEST_NODE][3], "Online");
  assert.match(byId[TEST_NODE][5], /Project=test/);
  assert.match(byId[TEST_NODE][5], /Name=web-1/);
  assert.match(byId[PROD_NODE][5], /Project=prod/);
  await shot(page, "nodes");
  await page.fill("#tag-filter", "Project=prod");
  const shown = await page.$$eval("#nodes tbody tr", (trs) => trs.map((tr) => tr.dataset.node));
  assert.deepEqual(shown, [PROD_NODE]);
  assert.equal(await page.textContent("#node-count"), "1 of 2 nodes");
  assert.match(page.url(), /tag=Project%3Dprod/);
  await shot(page, "nodes-filtered");
  await page.fill("#tag-filter", "Project");
  assert.equal((await page.$$("#nodes tbody tr")).length, 2);
});

test("Terminate on the own session ends it", async ({ page, world }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  await page.click("#nav-sessions");
  await page.waitForURL("**/console/sessions");
  await page.waitForSelector(`tr[data-session="${world.ownSession}"]`);
  const row = await page.$$eval(`tr[data-session="${world.ownSession}"] td`, (tds) => tds.map((td) => td.textContent));
  assert.equal(row[1], `arn:aws:iam::${ACCOUNT}:user/TestUserA`);
  assert.equal(row[2], TEST_NODE);
  assert.equal(row[5], "Connected");
  assert.equal(row[6], "console test: terminate own");
  await shot(page, "sessions-active");
  await page.click(`tr[data-session="${world.ownSession}"] button`);
  await page.waitForSelector(".notice");
  assert.equal(await page.textContent(".notice"), `Session ${world.ownSession} was terminated.`);
  await page.waitForSelector(`tr[data-session="${world.ownSession}"]`, { state: "detached" });
  assert.equal(await sessionStatus(world.admin, world.ownSession), "Terminated");
  await page.click("#tab-history");
  await page.waitForSelector(`tr[data-session="${world.ownSession}"]`);
  const ended = await page.$$eval(`tr[data-session="${world.ownSession}"] td`, (tds) => tds.map((td) => td.textContent));
  assert.equal(ended[5], "Terminated");
  assert.notEqual(ended[4], "—", "an end time is shown");
  await shot(page, "sessions-history");
});

test("Terminate on another user's session is refused with AWS's message; it stays Active", async ({ page, world }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  await page.goto("/console/sessions");
  await ready(page);
  await page.click(`tr[data-session="${world.otherSession}"] button`);
  await page.waitForSelector("#flash [data-testid=refusal]");
  assert.match(await page.textContent("#flash .code"), /^AccessDeniedException$/);
  assert.equal(
    await page.textContent("#flash [data-testid=refusal-message]"),
    `User: arn:aws:iam::${ACCOUNT}:user/TestUserA is not authorized to perform: ssm:TerminateSession on resource: ` +
      `arn:aws:ssm:${REGION}:${ACCOUNT}:session/${world.otherSession} because no identity-based policy allows the ssm:TerminateSession action`);
  // TestUserA may simulate its own policies (ReadOnlyAccess has iam:Simulate*), so the
  // console also shows the engine's explanation.
  const why = await page.textContent("#flash [data-testid=explanation]");
  assert.match(why, /^implicit deny: /);
  assert.match(why, /resource did not match/);
  await shot(page, "terminate-refused");
  assert.equal(await sessionStatus(world.admin, world.otherSession), "Connected");
  assert.ok(await page.$(`tr[data-session="${world.otherSession}"]`), "still listed as active");
});

test("a cross-site POST without the CSRF token is refused", async ({ page, context, world }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  const target = `${world.endpoint}/console/api/sessions/${world.csrfSession}/terminate`;
  // Same origin, the cookie sent, but no token / a wrong token.
  for (const headers of [{}, { "x-csrf-token": "B".repeat(43) }]) {
    const r = await page.evaluate(async ([url, headers]) => {
      const reply = await fetch(url, { method: "POST", headers });
      return { status: reply.status, body: await reply.json() };
    }, [target, headers]);
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "InvalidCsrfToken");
  }
  // Another origin on the same site (a different port on 127.0.0.1, so the SameSite=Strict
  // cookie still goes along): a page that submits a form to the console.
  const attacker = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<form id=f method=post action="${target}"><input name=x value=1></form><script>f.submit()</script>`);
  });
  await new Promise((r) => attacker.listen(0, "127.0.0.1", r));
  try {
    const evil = await context.newPage();
    const reply = evil.waitForResponse(target);
    await evil.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const r = await reply;
    assert.equal(r.status(), 403);
    assert.equal((await r.json()).code, "CrossSiteRequestRefused");
  } finally {
    attacker.close();
  }
  assert.equal(await sessionStatus(world.admin, world.csrfSession), "Connected");
});

test("a user without IAM permissions is refused, with AWS's message and no explanation", async ({ page }) => {
  await signInWithPassword(page, "NoPerms", PASSWORD);
  await page.waitForSelector("[data-testid=refusal]");
  assert.equal(await page.textContent("[data-testid=refusal] .code"), "AccessDeniedException");
  assert.equal(
    await page.textContent("[data-testid=refusal-message]"),
    `User: arn:aws:iam::${ACCOUNT}:user/NoPerms is not authorized to perform: ssm:DescribeInstanceInformation on resource: * ` +
      "because no identity-based policy allows the ssm:DescribeInstanceInformation action");
  assert.equal(await page.$("[data-testid=explanation]"), null, "NoPerms may not simulate its policies");
  assert.equal(await page.$("#nodes"), null);
  await shot(page, "nodes-refused");
  await page.goto("/console/sessions");
  await ready(page);
  assert.match(await page.textContent("[data-testid=refusal-message]"), /not authorized to perform: ssm:DescribeSessions/);
});

test("the account root signs in with its access key and sees every session", async ({ page, world }) => {
  await page.goto("/console/signin");
  await page.click("#tab-key");
  await page.fill("#access-key-id", world.keys.admin[0]);
  await page.fill("#secret-access-key", world.keys.admin[1]);
  await page.click("#form-key button[type=submit]");
  await page.waitForURL("**/console/nodes");
  await ready(page);
  assert.match(await page.textContent("#who"), /^root · /);
  assert.equal((await page.$$("#nodes tbody tr")).length, 2);
  await page.goto("/console/sessions");
  await ready(page);
  assert.ok(await page.$(`tr[data-session="${world.otherSession}"]`));
  assert.ok(await page.$(`tr[data-session="${world.csrfSession}"]`));
});

test("sign-out ends the session on the server", async ({ page, context, world }) => {
  await signInWithPassword(page, "TestUserA", PASSWORD);
  const [cookie] = (await context.cookies(world.endpoint + "/console/")).filter((c) => c.name === "portcullis_console");
  await page.click("#signout");
  await page.waitForURL("**/console/signin");
  assert.equal((await context.cookies(world.endpoint + "/console/")).filter((c) => c.name === "portcullis_console").length, 0);
  // The old cookie, replayed, no longer works.
  await context.addCookies([cookie]);
  await page.goto("/console/nodes");
  assert.ok(isSignInPage(page), page.url());
});

// ---- the runner -----------------------------------------------------------------------------

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-"));
  const { proc, endpoint } = await startServer(dataDir);
  let browser;
  let passed = 0;
  let failed = 0;
  try {
    const world = { endpoint, ...(await setUp(endpoint, dataDir)) };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    const only = process.argv[2];
    for (const t of tests) {
      if (only && !t.name.includes(only)) continue;
      const context = await browser.newContext({ baseURL: endpoint, viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const started = Date.now();
      try {
        await withTimeout(t.fn({ page, context, world }), TEST_TIMEOUT_MS, t.name);
        passed += 1;
        console.log(`PASS ${t.name} (${Date.now() - started} ms)`);
      } catch (e) {
        failed += 1;
        console.log(`FAIL ${t.name}\n  ${String(e && e.stack || e).split("\n").join("\n  ")}`);
        await shot(page, "FAILED-" + t.name.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 60)).catch(() => {});
      } finally {
        await context.close();
      }
    }
  } finally {
    if (browser) await browser.close();
    proc.kill("SIGTERM");
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`screenshots: ${SHOTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  console.log("0 passed, 1 failed");
  process.exitCode = 1;
});
