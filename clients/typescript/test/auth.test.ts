// The login over a socket's life: the access token is refreshed before it expires and handed to
// the live socket in-band, so the socket outlives many tokens; a revoked session ends every
// socket of it; two tabs refreshing at once keep their session.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MemoryTokenStore, StorageTokenStore, Switchboard, type StateChange, type StorageLike } from "../src/index.js";
import { PASSWORD, sleep, startServer, until, userClient, username, type Server } from "./harness.js";

let server: Server;
const TTL_SECS = 3;
before(async () => {
  server = await startServer({ SWITCHBOARD_ACCESS_TTL_SECS: String(TTL_SECS) });
});
after(async () => server.stop());

test("a live socket outlives three access tokens, refreshed in-band, without reconnecting", async () => {
  const a = await userClient(server.url);
  const b = await userClient(server.url);
  // The control: the same client without refreshes is closed with 4002 once its token lapses.
  const stale = await userClient(server.url);
  stale.auth.refresh = () => new Promise(() => undefined);
  const staleStates: StateChange[] = [];
  stale.on("state", (s) => staleStates.push(s));
  stale.connect();

  const channel = `room:refresh-${Date.now()}`;
  const states: StateChange[] = [];
  const tokens = new Set<string>([a.auth.tokens!.accessToken]);
  a.auth.on("tokens", (t) => tokens.add(t.accessToken));
  const seen: number[] = [];
  await a.subscribe(channel, { onMessage: (m) => seen.push(m.offset) }).ready;
  a.on("state", (s) => states.push(s));

  const end = Date.now() + 3 * TTL_SECS * 1000 + 1000;
  let n = 0;
  while (Date.now() < end) {
    await b.publish(channel, { n: n++ });
    await sleep(250);
  }
  await until(() => seen.length === n, "every message");
  assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i + 1));
  assert.ok(tokens.size >= 3, `${tokens.size} access tokens used`);
  assert.deepEqual(
    states.filter((s) => s.state !== "connected").map((s) => s.state),
    [],
    "the socket never dropped",
  );
  assert.ok(
    staleStates.some((s) => s.state === "disconnected" && s.close?.code === 4002),
    `the control was closed with 4002: ${JSON.stringify(staleStates.map((s) => s.close?.code))}`,
  );
  for (const c of [a, b, stale]) c.close();
});

test("a session revoked elsewhere closes this client's socket with 4001 and logs it out", async () => {
  const shared = new Map<string, string>();
  const storage: StorageLike = {
    getItem: (k) => shared.get(k) ?? null,
    setItem: (k, v) => void shared.set(k, v),
    removeItem: (k) => void shared.delete(k),
  };
  const first = new Switchboard({ url: server.url, tokenStore: new StorageTokenStore(storage) });
  const name = username();
  await first.register(name, PASSWORD);
  await first.login(name, PASSWORD);
  await first.subscribe("room:lobby").ready;
  const ended: string[] = [];
  first.on("logged_out", (e) => ended.push(e.reason));
  // A second tab of the same session logs out.
  const second = new Switchboard({ url: server.url, tokenStore: new MemoryTokenStore() });
  second.auth.store.set(first.auth.tokens);
  await second.logout();
  await until(() => ended.length > 0, "the revocation to reach the socket");
  assert.deepEqual(ended, ["revoked"]);
  assert.equal(first.state, "closed");
  first.close();
  second.close();
});

test("two tabs refreshing at the same moment keep the session (the loser adopts the winner's tokens)", async () => {
  const shared = new Map<string, string>();
  const storage: StorageLike = {
    getItem: (k) => shared.get(k) ?? null,
    setItem: (k, v) => void shared.set(k, v),
    removeItem: (k) => void shared.delete(k),
  };
  const tab1 = new Switchboard({ url: server.url, tokenStore: new StorageTokenStore(storage) });
  const name = username();
  await tab1.register(name, PASSWORD);
  await tab1.login(name, PASSWORD);
  const tab2 = new Switchboard({ url: server.url, tokenStore: new StorageTokenStore(storage) });
  // Both read the same refresh token before either answer arrives.
  const spent = tab1.auth.tokens!.refreshToken;
  const results = await Promise.allSettled([tab1.auth.refresh(), tab2.auth.refresh()]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
  const now = tab1.auth.tokens!;
  assert.notEqual(now.refreshToken, spent);
  // The session is alive: the stored tokens work.
  assert.ok((await tab2.api.rooms.list()).rooms);
  await tab1.subscribe("room:lobby").ready;
  tab1.close();
  tab2.close();
});

test("logout here rejects waiting publishes and stops the socket", async () => {
  const a = await userClient(server.url);
  await a.subscribe("room:lobby").ready;
  const ended: string[] = [];
  a.on("logged_out", (e) => ended.push(e.reason));
  await a.logout();
  assert.deepEqual(ended, ["logout"]);
  assert.equal(a.state, "closed");
  assert.equal(a.user, null);
  a.close();
});

test("subscriptions and publishes made before the login go on by themselves once logged in", async () => {
  const sb = new Switchboard({ url: server.url });
  const name = username();
  await sb.register(name, PASSWORD);
  const channel = `room:early-${Date.now()}`;
  const seen: number[] = [];
  const sub = sb.subscribe(channel, { since: 0, onMessage: (m) => seen.push(m.offset) });
  const published = sb.publish(channel, { early: true });
  await sleep(100);
  assert.equal(sb.state, "closed", "nothing to connect with before the login");
  await sb.login(name, PASSWORD);
  await sub.ready;
  assert.equal(await published, 1);
  await until(() => seen.length === 1, "the early publish, delivered");
  sb.close();
});
