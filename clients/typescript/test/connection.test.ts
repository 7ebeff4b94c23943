// The connection's decisions, against a scripted socket: backoff that a flapping server cannot
// reset, the server's reconnect delay as a floor, revocation, gap repair, the resend of a publish
// whose ack was lost.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Message, StateChange } from "../src/index.js";
import { FakeSocket, ackAuth, fakeClient } from "./fake.js";
import { until } from "./harness.js";

const fixed = { random: () => 0.999 };

test("a server that closes every connection right after accepting it does not reset the backoff", async () => {
  FakeSocket.script = (s) =>
    ackAuth(s, (f) => {
      if (f.type !== "auth") return false;
      s.push({ type: "ack", id: f.id, user: { id: "u1", username: "alice" } });
      s.serverClose(1013, "try again later");
      return true;
    });
  const sb = fakeClient({ backoff: { initialMs: 10, maxMs: 80, ...fixed }, stableAfterMs: 10_000 });
  const delays: number[] = [];
  sb.on("state", (c: StateChange) => c.state === "disconnected" && delays.push(c.retryInMs!));
  sb.connect();
  await until(() => delays.length >= 6, "six reconnects");
  sb.close();
  assert.deepEqual(delays.slice(0, 6), [9, 19, 39, 79, 79, 79], "exponential, capped, never reset by a successful open");
});

test("the server's reconnect.after_ms is a floor for the next attempt", async () => {
  let first = true;
  FakeSocket.script = (s) => {
    ackAuth(s);
    if (first) {
      first = false;
      setTimeout(() => {
        s.push({ type: "reconnect", after_ms: 700 });
        s.serverClose(1001, "going away");
      }, 5);
    }
  };
  const sb = fakeClient({ backoff: { initialMs: 10, ...fixed } });
  const changes: StateChange[] = [];
  sb.on("state", (c) => changes.push(c));
  sb.connect();
  await until(() => changes.some((c) => c.state === "disconnected"), "the drain");
  const down = changes.find((c) => c.state === "disconnected")!;
  assert.equal(down.close?.code, 1001);
  assert.equal(down.retryInMs, 700);
  sb.close();
});

test("a connection that stayed up resets the backoff when the path dies", async () => {
  let n = 0;
  FakeSocket.script = (s) => {
    ackAuth(s);
    n += 1;
    setTimeout(() => s.serverClose(1006), n <= 4 ? 1 : 80);
  };
  const sb = fakeClient({ backoff: { initialMs: 10, maxMs: 1000, ...fixed }, stableAfterMs: 50 });
  const delays: number[] = [];
  sb.on("state", (c) => c.state === "disconnected" && delays.push(c.retryInMs!));
  sb.connect();
  await until(() => delays.length >= 5, "five reconnects");
  sb.close();
  assert.deepEqual(delays.slice(0, 5), [9, 19, 39, 79, 9]);
});

test("close 4001 (session revoked) logs out and stops reconnecting", async () => {
  FakeSocket.script = (s) => {
    ackAuth(s);
    setTimeout(() => s.serverClose(4001, "session revoked"), 5);
  };
  const sb = fakeClient({ backoff: { initialMs: 10 } });
  const ended: string[] = [];
  sb.on("logged_out", (e) => ended.push(e.reason));
  sb.connect();
  await until(() => ended.length === 1, "the logout");
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(ended, ["revoked"]);
  assert.equal(sb.state, "closed");
  assert.equal(FakeSocket.opened.length, 1, "no reconnect after a revocation");
  assert.equal(sb.user, null);
  sb.close();
});

function msg(offset: number): Message {
  return { channel: "room:gap", offset, id: `m${offset}`, from: "u2", ts: "2026-12-01T00:00:00Z", data: { offset } };
}

test("a gap is filled from history before later messages are delivered, and repeats are dropped", async () => {
  const historyAsks: unknown[] = [];
  FakeSocket.script = (s) =>
    ackAuth(s, (f) => {
      if (f.type === "subscribe") {
        s.push({ type: "ack", id: f.id, offset: 0 });
        for (const o of [1, 2, 5, 2, 6]) s.push({ type: "message", ...msg(o) });
        return true;
      }
      if (f.type === "history") {
        historyAsks.push({ before: f.before, limit: f.limit });
        setTimeout(() => {
          s.push({ type: "ack", id: f.id, messages: [msg(3), msg(4)] });
          s.push({ type: "message", ...msg(4) });
          s.push({ type: "message", ...msg(7) });
        }, 10);
        return true;
      }
      return false;
    });
  const sb = fakeClient();
  const seen: number[] = [];
  sb.subscribe("room:gap", { since: 0, onMessage: (m) => seen.push(m.offset) });
  await until(() => seen.length >= 7, "seven messages");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(historyAsks, [{ before: 5, limit: 2 }]);
  sb.close();
});

test("a channel shorter than the stored offset restarts from its end with a reset event", async () => {
  FakeSocket.script = (s) =>
    ackAuth(s, (f) => {
      if (f.type !== "subscribe") return false;
      s.push({ type: "ack", id: f.id, offset: 3 });
      s.push({ type: "message", ...msg(4) });
      return true;
    });
  const sb = fakeClient();
  const resets: unknown[] = [];
  const seen: number[] = [];
  const sub = sb.subscribe("room:gap", { since: 10, onMessage: (m) => seen.push(m.offset) });
  sub.on("reset", (r) => resets.push(r));
  await until(() => seen.length === 1, "the message after the reset");
  assert.deepEqual(resets, [{ from: 10, to: 3 }]);
  assert.deepEqual(seen, [4]);
  sb.close();
});

test("a publish whose ack was lost with the socket is sent again on the next one, with the same key", async () => {
  let sockets = 0;
  FakeSocket.script = (s) => {
    sockets += 1;
    const mine = sockets;
    ackAuth(s, (f) => {
      if (f.type !== "publish") return false;
      if (mine === 1) s.serverClose(1006);
      else s.push({ type: "ack", id: f.id, offset: 1 });
      return true;
    });
  };
  const sb = fakeClient({ backoff: { initialMs: 5 } });
  const offset = await sb.publish("room:x", { text: "hi" }, { idempotencyKey: "k-1" });
  assert.equal(offset, 1);
  const publishes = FakeSocket.opened.flatMap((s) => s.sent.filter((f) => f.type === "publish"));
  assert.equal(publishes.length, 2);
  assert.deepEqual(
    publishes.map((f) => f.type === "publish" && f.idempotency_key),
    ["k-1", "k-1"],
  );
  sb.close();
});

test("the outbox is bounded", async () => {
  FakeSocket.script = (s) => s.serverClose(1006);
  const sb = fakeClient({ outboxLimit: 3, backoff: { initialMs: 1000 } });
  const waiting = [1, 2, 3].map((i) => sb.publish("room:x", { i }));
  await assert.rejects(sb.publish("room:x", { i: 4 }), { name: "SwitchboardError", code: "outbox_full" });
  assert.equal(sb.pendingPublishes, 3);
  sb.close();
  for (const w of waiting) await assert.rejects(w, { code: "closed" });
});
