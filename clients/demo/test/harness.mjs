// What the end-to-end tests share: a server process of our own (on port 0), headless Chromium
// (Debian's, never a downloaded build), and the steps a person takes in the demo.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = fileURLToPath(new URL(".", import.meta.url));
export const ARTIFACTS = join(here, "..", "test-artifacts");
export const BIN =
  process.env.SWITCHBOARD_BIN ??
  join(process.env.CARGO_TARGET_DIR ?? join(here, "..", "..", "..", "target"), "debug", "switchboard");
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
export const PASSWORD = "correct horse battery";
/** The page's policy, as server/src/http/demo.rs sends it (for DEMO_FROM_DIST). */
export const CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** A name no other run uses (usernames are 3–32 of A-Z a-z 0-9 _ . -). */
export function unique(prefix) {
  return `${prefix}${Date.now().toString(36).slice(-5)}${Math.random().toString(36).slice(2, 6)}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- server processes ------------------------------------------------------------------------

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Starts `switchboard` and resolves once it listens. `env` adds to (and overrides) the defaults:
 * port 0, no admin listener, demo on, SQLite in a fresh temporary directory, generous auth limits.
 */
export async function startServer(env = {}, { name = "server", front = process.env.DEMO_FROM_DIST === "1" } = {}) {
  const own = env.SWITCHBOARD_DATA_DIR === undefined ? await mkdtemp(join(tmpdir(), "sb-demo-")) : null;
  const proc = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH,
      NO_COLOR: "1",
      RUST_LOG: process.env.RUST_LOG ?? "info,tower_http=warn",
      SWITCHBOARD_BIND: "127.0.0.1:0",
      SWITCHBOARD_ADMIN_BIND: "off",
      SWITCHBOARD_DEMO: "true",
      SWITCHBOARD_REGISTER_PER_IP: "10000",
      SWITCHBOARD_REGISTER_PER_MIN: "10000",
      SWITCHBOARD_LOGIN_PER_IP: "10000",
      SWITCHBOARD_LOGIN_PER_USER: "10000",
      ...(own ? { SWITCHBOARD_DATA_DIR: own } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  let adminPort = null;
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s:\n${log.join("\n")}`)), 30_000);
    let buffer = "";
    const onData = (chunk) => {
      buffer += chunk.toString();
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(ANSI, "");
        buffer = buffer.slice(nl + 1);
        log.push(line);
        if (log.length > 2000) log.shift();
        const admin = /admin listener.*addr=127\.0\.0\.1:(\d+)/.exec(line);
        if (admin) adminPort = Number(admin[1]);
        const m = /switchboard listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${log.join("\n")}`));
    });
  });
  const port = await listening;
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  // DEMO_FROM_DIST=1: the page comes from dist/ on disk through scripts/dev-server.mjs, for
  // trying a change without rebuilding the server binary (which embeds dist/).
  const dev = front ? await startDevServer(`http://127.0.0.1:${port}`) : null;
  const url = dev?.url ?? `http://127.0.0.1:${port}`;
  const server = {
    name,
    port,
    url,
    proc,
    log,
    get adminPort() {
      return adminPort;
    },
    exited,
    /** SIGTERM and wait (a graceful drain), then SIGKILL after 10 s. */
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
    /** SIGKILL: a crash, no drain, no goodbye to its sockets. */
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGKILL");
      await exited;
    },
    async cleanup() {
      dev?.proc.kill();
      await server.stop();
      if (own) await rm(own, { recursive: true, force: true });
    },
  };
  await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok === true, 30_000, `${name} ready`);
  return server;
}

async function startDevServer(target) {
  const proc = spawn(process.execPath, [join(here, "..", "scripts", "dev-server.mjs"), "--port", "0", "--target", target], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    proc.stdout.on("data", (chunk) => {
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(chunk.toString());
      if (m) resolve(m[1]);
    });
    proc.on("exit", () => reject(new Error("the dev server exited")));
  });
  return { proc, url };
}

/** Polls `check` until it is truthy; throws after `ms`. */
export async function waitFor(check, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- the REST API, from Node (the "other user" of some tests) ---------------------------------

export async function api(base, method, path, { token, body } = {}) {
  const res = await fetch(new URL(path, base), {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return json;
}

/** Registers and logs in over HTTP: `{ id, username, token }`. */
export async function apiUser(base, username) {
  await api(base, "POST", "/api/v1/auth/register", { body: { username, password: PASSWORD } });
  const login = await api(base, "POST", "/api/v1/auth/login", { body: { username, password: PASSWORD } });
  return { ...login.user, token: login.access_token };
}

export function apiSay(base, user, room, text) {
  return api(base, "POST", `/api/v1/channels/${encodeURIComponent(`room:${room}`)}/messages`, {
    token: user.token,
    body: { data: { text } },
  });
}

// ---- the browser -------------------------------------------------------------------------------

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

/**
 * A browser context (one person: its own localStorage) with one page. `problems` collects page
 * errors and console errors (a CSP refusal is one), which the tests expect to stay empty.
 */
export async function openPerson(browser, base) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  await page.goto(base);
  return { context, page, problems };
}

/** Creates an account in the page's login form (which then logs in). */
export async function signUp(page, username) {
  await page.getByTestId("auth-username").fill(username);
  await page.getByTestId("auth-password").fill(PASSWORD);
  await page.getByTestId("auth-register").click();
  await page.getByTestId("shell").waitFor();
  await page.locator(`[data-testid=conn-state][data-state=connected]`).waitFor();
}

export async function createRoom(page, name, { private: priv = false, members = [] } = {}) {
  await page.getByTestId("room-name").fill(name);
  if (priv) {
    await page.getByTestId("room-private").check();
    await page.getByTestId("room-members").fill(members.join(", "));
  }
  await page.getByTestId("room-create").click();
  await waitLive(page, name);
}

/** Opens a room from the room list (refreshing it first). */
export async function openRoomFromList(page, name) {
  await page.getByTestId("rooms-refresh").click();
  await page.locator(`[data-testid=room-link][data-room="${name}"]`).click();
  await waitLive(page, name);
}

export async function waitLive(page, room) {
  await page.locator(`[data-testid=chat][data-room="${room}"][data-state=live]`).waitFor();
}

export async function say(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-input").press("Enter");
}

/** The chat messages the page shows, in page order: `{ offset, channel, from, text }`. */
export function shownMessages(page) {
  return page.$$eval("[data-testid=message]", (rows) =>
    rows.map((r) => ({
      offset: Number(r.getAttribute("data-offset")),
      channel: r.getAttribute("data-channel"),
      from: r.getAttribute("data-from"),
      text: r.querySelector("[data-testid=message-text]")?.textContent ?? "",
    })),
  );
}

/** Waits until the page shows `n` messages (or more, which the caller's asserts then catch). */
export async function waitForCount(page, n, ms = 15_000) {
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=message]").length >= n, n, { timeout: ms });
}

/** Offsets strictly ascending and gapless from `first`; no message twice. */
export function assertExactlyOnceInOrder(assert, messages, { first = 1, count } = {}) {
  const offsets = messages.map((m) => m.offset);
  if (count !== undefined) assert.equal(messages.length, count, `expected ${count} messages, got ${messages.length}: ${offsets}`);
  assert.deepEqual(
    offsets,
    offsets.map((_, i) => first + i),
    `offsets must be gapless and ascending from ${first}`,
  );
  assert.equal(new Set(messages.map((m) => m.text)).size, messages.length, "no text shown twice");
}

export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}
