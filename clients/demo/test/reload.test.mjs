// A reload: still logged in, back in the same room, the earlier messages shown once each
// (the newest page, then older pages on demand), and live again.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as H from "./harness.mjs";

let server;
let browser;
before(async () => {
  server = await H.startServer();
  browser = await H.launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

test("a reload recovers the history once and goes live", async () => {
  const me = await H.openPerson(browser, server.url);
  const myName = H.unique("rel");
  const room = H.unique("reload");
  await H.signUp(me.page, myName);
  await H.createRoom(me.page, room);
  const other = await H.apiUser(server.url, H.unique("oth"));

  // 3 typed here, 3 from someone else while the page watches.
  for (let i = 0; i < 3; i++) await H.say(me.page, `typed ${i}`);
  await H.waitForCount(me.page, 3);
  for (let i = 0; i < 3; i++) await H.apiSay(server.url, other, room, `heard ${i}`);
  await H.waitForCount(me.page, 6);
  const before = await H.shownMessages(me.page);
  H.assertExactlyOnceInOrder(assert, before, { count: 6 });

  await me.page.reload();
  // Still logged in (the tokens are in localStorage) and back in the room (the URL's hash).
  await me.page.getByTestId("shell").waitFor();
  assert.equal(await me.page.getByTestId("auth-form").count(), 0);
  assert.equal(await me.page.getByTestId("me").textContent(), myName);
  await H.waitLive(me.page, room);
  await H.waitForCount(me.page, 6);
  await H.sleep(300);
  assert.deepEqual(await H.shownMessages(me.page), before, "the same messages, once each, in order");
  assert.ok(await me.page.getByTestId("history-start").isVisible(), "the whole room fits one page");

  // Live again: someone else's message and one typed here.
  await H.apiSay(server.url, other, room, "after the reload");
  await H.waitForCount(me.page, 7);
  await H.say(me.page, "typed after the reload");
  await H.waitForCount(me.page, 8);
  await H.sleep(300);
  const after = await H.shownMessages(me.page);
  H.assertExactlyOnceInOrder(assert, after, { count: 8 });
  assert.deepEqual(after.slice(6).map((m) => m.text), ["after the reload", "typed after the reload"]);
  assert.deepEqual(me.problems, []);
  await me.context.close();
});

test("scroll-back pages through the history without gaps or repeats", async () => {
  const me = await H.openPerson(browser, server.url);
  const room = H.unique("long");
  await H.signUp(me.page, H.unique("scr"));
  const other = await H.apiUser(server.url, H.unique("oth"));
  const TOTAL = 130; // three pages of 50
  for (let i = 1; i <= TOTAL; i++) await H.apiSay(server.url, other, room, `line ${i}`);

  await me.page.goto(`${server.url}/#/room/${room}`);
  await H.waitLive(me.page, room);
  await H.waitForCount(me.page, 50);
  let shown = await H.shownMessages(me.page);
  H.assertExactlyOnceInOrder(assert, shown, { first: TOTAL - 49, count: 50 });
  assert.ok(await me.page.getByTestId("load-older").isVisible());

  // One page with the button, the next by scrolling to the top.
  await me.page.getByTestId("load-older").click();
  await H.waitForCount(me.page, 100);
  await me.page.getByTestId("messages").evaluate((el) => {
    el.scrollTop = 0;
    el.dispatchEvent(new Event("scroll"));
  });
  await H.waitForCount(me.page, TOTAL);
  await me.page.getByTestId("history-start").waitFor();
  shown = await H.shownMessages(me.page);
  H.assertExactlyOnceInOrder(assert, shown, { first: 1, count: TOTAL });
  assert.deepEqual(shown.map((m) => m.text), [...Array(TOTAL).keys()].map((i) => `line ${i + 1}`));
  assert.ok(await me.page.getByTestId("load-older").isHidden());

  // A live message still lands at the end.
  await H.apiSay(server.url, other, room, "live at the end");
  await H.waitForCount(me.page, TOTAL + 1);
  assert.equal((await H.shownMessages(me.page)).at(-1).text, "live at the end");
  assert.deepEqual(me.problems, []);
  await me.context.close();
});

test("a server restart: the page reconnects and misses nothing", async () => {
  // A server of this test's own, on a fixed data directory, restarted on the same port.
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "sb-demo-restart-"));
  const first = await H.startServer({ SWITCHBOARD_DATA_DIR: dir }, { name: "restarting" });
  let node = first;
  const port = node.port;
  try {
    const me = await H.openPerson(browser, node.url);
    const room = H.unique("restart");
    await H.signUp(me.page, H.unique("rst"));
    await H.createRoom(me.page, room);
    await H.say(me.page, "before the restart");
    await H.waitForCount(me.page, 1);

    await node.stop();
    await me.page.locator("[data-testid=conn-state]:not([data-state=connected])").waitFor();
    // Typed while the server is down: it waits in the SDK's outbox.
    await H.say(me.page, "typed while down");
    // (With DEMO_FROM_DIST the page stays on the first node's dev front, which forwards to the port.)
    node = await H.startServer({ SWITCHBOARD_DATA_DIR: dir, SWITCHBOARD_BIND: `127.0.0.1:${port}` }, { name: "restarted", front: false });
    await me.page.locator("[data-testid=conn-state][data-state=connected]").waitFor({ timeout: 15_000 });
    await H.waitForCount(me.page, 2);
    const other = await H.apiUser(node.url, H.unique("oth"));
    await H.apiSay(node.url, other, room, "after the restart");
    await H.waitForCount(me.page, 3);
    await H.sleep(300);
    const shown = await H.shownMessages(me.page);
    H.assertExactlyOnceInOrder(assert, shown, { count: 3 });
    assert.deepEqual(shown.map((m) => m.text), ["before the restart", "typed while down", "after the restart"]);
    assert.equal(await me.page.getByTestId("message-pending").count(), 0);
    await me.context.close();
  } finally {
    await node.stop();
    await first.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test("logout ends the session: back to the login page, also after a reload", async () => {
  const me = await H.openPerson(browser, server.url);
  const name = H.unique("out");
  await H.signUp(me.page, name);
  const tokens = await me.page.evaluate(() => localStorage.getItem("switchboard.demo.tokens"));
  assert.ok(tokens, "the login is kept in localStorage");
  // The page forgets the login at once and revokes it in the background: wait for that request
  // before checking the server's side.
  const revoked = me.page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/logout"));
  await me.page.getByTestId("logout").click();
  await me.page.getByTestId("auth-form").waitFor();
  assert.equal((await revoked).status(), 204);
  assert.equal(await me.page.evaluate(() => localStorage.getItem("switchboard.demo.tokens")), null);
  // The refresh token is revoked on the server, not only forgotten here.
  const refresh = JSON.parse(tokens).refreshToken;
  const res = await fetch(`${server.url}/api/v1/auth/refresh`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: refresh }),
  });
  assert.equal(res.status, 401);
  await me.page.reload();
  await me.page.getByTestId("auth-form").waitFor();
  // Wrong password: an error on the form; then the right one logs in again.
  await me.page.getByTestId("auth-username").fill(name);
  await me.page.getByTestId("auth-password").fill("not the password");
  await me.page.getByTestId("auth-login").click();
  await me.page.getByTestId("auth-error").filter({ hasText: "Wrong username or password" }).waitFor();
  await me.page.getByTestId("auth-password").fill(H.PASSWORD);
  await me.page.getByTestId("auth-login").click();
  await me.page.locator("[data-testid=conn-state][data-state=connected]").waitFor();
  assert.equal(await me.page.getByTestId("me").textContent(), name);
  await me.context.close();
});
