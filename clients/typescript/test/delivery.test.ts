// Exactly-once, in-order delivery across reconnects, against a real server: publishers write
// numbered messages while the subscriber's socket is killed at random moments; the subscriber
// must see every stored offset once, in order, with the payloads history has.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Switchboard, type Message } from "../src/index.js";
import { msgpackCodec } from "../src/msgpack.js";
import { Proxy, sleep, startServer, until, userClient, type Server } from "./harness.js";

let server: Server;

before(async () => {
  server = await startServer({ SWITCHBOARD_PUBLISH_RATE: "2000", SWITCHBOARD_PUBLISH_BURST: "4000", SWITCHBOARD_USER_PUBLISH_RATE: "2000", SWITCHBOARD_USER_PUBLISH_BURST: "4000" });
});
after(async () => server.stop());

/** Reads the whole channel from history, page by page. */
async function wholeHistory(sb: Switchboard, channel: string): Promise<Message[]> {
  const all: Message[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await sb.api.channels.history(channel, { before, limit: 200 });
    if (page.length === 0) return all;
    all.unshift(...page);
    before = page[0]!.offset;
  }
}

function assertExactlyOnceInOrder(seen: Message[], stored: Message[]): void {
  const offsets = seen.map((m) => m.offset);
  assert.deepEqual(offsets, stored.map((m) => m.offset), "the subscriber saw exactly the stored offsets, in order");
  assert.deepEqual(
    seen.map((m) => m.id),
    stored.map((m) => m.id),
    "each offset carries the stored message",
  );
}

for (const encoding of ["json", "msgpack"] as const) {
  test(`${encoding}: random socket kills during concurrent publishing lose nothing, repeat nothing, keep order`, async () => {
    const codec = encoding === "msgpack" ? msgpackCodec() : undefined;
    const proxy = await new Proxy(server.port).listen();
    const channel = `room:kills-${encoding}-${Date.now()}`;
    const subscriber = await userClient(proxy.url, { codec, backoff: { initialMs: 50, maxMs: 300 } });
    const seen: Message[] = [];
    const sub = subscriber.subscribe(channel, { since: 0, onMessage: (m) => seen.push(m) });
    await sub.ready;

    // One publisher shares the subscriber's fate: its in-flight publishes die with the socket and
    // are resent with their idempotency keys, so each is still stored exactly once.
    const publishers = await Promise.all(
      [proxy.url, server.url, server.url].map((url) => userClient(url, { codec, backoff: { initialMs: 50, maxMs: 300 } })),
    );
    const total = 600;
    const acked: number[] = [];
    const publishing = publishers.map(async (p, i) => {
      for (let n = i; n < total; n += publishers.length) {
        acked.push(await p.publish(channel, { n }));
        if (n % 7 === 0) await sleep(1);
      }
    });
    let kills = 0;
    const killing = (async () => {
      while (acked.length < total) {
        await sleep(20 + Math.random() * 80);
        proxy.kill();
        kills += 1;
      }
    })();
    await Promise.all([...publishing, killing]);
    await until(() => seen.length >= total, `${total} messages (have ${seen.length})`, 30_000);
    await sleep(200);

    const stored = await wholeHistory(publishers[0]!, channel);
    assert.equal(stored.length, total, "every publish was stored once");
    assert.deepEqual([...acked].sort((a, b) => a - b), stored.map((m) => m.offset), "every ack names a stored offset");
    assertExactlyOnceInOrder(seen, stored);
    assert.ok(kills >= 5, `the socket was killed ${kills} times`);
    assert.equal(sub.lastOffset, total);

    for (const c of [subscriber, ...publishers]) c.close();
    await proxy.close();
  });
}

test("a publish retried with the same idempotency key is stored once", async () => {
  const a = await userClient(server.url);
  const channel = `room:retry-${Date.now()}`;
  const first = await a.publish(channel, { text: "once" }, { idempotencyKey: "retry-1" });
  const again = await a.publish(channel, { text: "once" }, { idempotencyKey: "retry-1" });
  assert.equal(again, first);
  assert.equal((await wholeHistory(a, channel)).length, 1);
  a.close();
});

test("a later subscription resumes from the offset store, not from the start", async () => {
  const a = await userClient(server.url);
  const channel = `room:resume-${Date.now()}`;
  for (let i = 0; i < 5; i++) await a.publish(channel, { i });
  const first: number[] = [];
  const sub = a.subscribe(channel, { since: 0, onMessage: (m) => first.push(m.offset) });
  await until(() => first.length === 5, "the replay");
  sub.unsubscribe();
  for (let i = 5; i < 8; i++) await a.publish(channel, { i });
  const second: number[] = [];
  const again = a.subscribe(channel, { onMessage: (m) => second.push(m.offset) });
  await again.ready;
  await until(() => second.length === 3, "the missed three");
  await sleep(100);
  assert.deepEqual(second, [6, 7, 8]);
  a.close();
});

test("the async iterator yields the same sequence", async () => {
  const a = await userClient(server.url);
  const channel = `room:iter-${Date.now()}`;
  const sub = a.subscribe(channel, { since: 0 });
  await sub.ready;
  const offsets: number[] = [];
  const reading = (async () => {
    for await (const m of sub) {
      offsets.push(m.offset);
      if (offsets.length === 10) break;
    }
  })();
  for (let i = 0; i < 10; i++) await a.publish(channel, { i });
  await reading;
  assert.deepEqual(offsets, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(sub.state, "ended", "leaving the loop unsubscribes");
  a.close();
});

test("a dead path (no close, no traffic) is detected by the ping watchdog and replaced", async () => {
  const proxy = await new Proxy(server.port).listen();
  const a = await userClient(proxy.url, { pingIntervalMs: 300, pongTimeoutMs: 300, backoff: { initialMs: 20, maxMs: 100 } });
  const b = await userClient(server.url);
  const channel = `room:dead-${Date.now()}`;
  const seen: number[] = [];
  const sub = a.subscribe(channel, { since: 0, onMessage: (m) => seen.push(m.offset) });
  await sub.ready;
  await b.publish(channel, { n: 1 });
  await until(() => seen.length === 1, "the first message");
  const states: string[] = [];
  a.on("state", (s) => states.push(s.state));
  proxy.blackhole();
  await b.publish(channel, { n: 2 });
  proxy.up();
  await until(() => seen.length === 2, "the message published while the path was dead", 10_000);
  assert.deepEqual(seen, [1, 2]);
  assert.ok(states.includes("disconnected") && states.at(-1) === "connected", `states: ${states.join(",")}`);
  a.close();
  b.close();
  await proxy.close();
});

test("publishes made while the server is unreachable wait in the outbox and are stored once each, in order", async () => {
  const proxy = await new Proxy(server.port).listen();
  const a = await userClient(proxy.url, { backoff: { initialMs: 50, maxMs: 200 } });
  const channel = `room:outbox-${Date.now()}`;
  await a.subscribe(channel).ready;
  proxy.down();
  await until(() => a.state === "disconnected", "the client to notice");
  const offsets = Array.from({ length: 20 }, (_, i) => a.publish(channel, { i }));
  await sleep(300);
  assert.equal(a.pendingPublishes, 20, "all twenty wait");
  assert.notEqual(a.state, "connected");
  proxy.up();
  const stored = await Promise.all(offsets);
  assert.deepEqual(stored, Array.from({ length: 20 }, (_, i) => i + 1), "sent in order after the reconnect");
  const history = await wholeHistory(a, channel);
  assert.deepEqual(
    history.map((m) => (m.data as { i: number }).i),
    Array.from({ length: 20 }, (_, i) => i),
    "each stored once, in the order published",
  );
  assert.equal(a.pendingPublishes, 0);
  a.close();
  await proxy.close();
});
