// Every refusal reaches the application as a SwitchboardError with the server's code, over the
// socket and over HTTP alike.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Switchboard, SwitchboardError } from "../src/index.js";
import { PASSWORD, startServer, userClient, username, type Server } from "./harness.js";

let server: Server;
before(async () => {
  server = await startServer({ SWITCHBOARD_PUBLISH_RATE: "1", SWITCHBOARD_PUBLISH_BURST: "3", SWITCHBOARD_MAX_FRAME_BYTES: "4096" });
});
after(async () => server.stop());

function isError(code: string, status?: number) {
  return (err: unknown) => {
    assert.ok(err instanceof SwitchboardError, `a SwitchboardError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (status !== undefined) assert.equal(err.status, status);
    return true;
  };
}

test("HTTP refusals carry the code and status of the server's table", async () => {
  const sb = new Switchboard({ url: server.url });
  const name = username();
  await sb.register(name, PASSWORD);
  await assert.rejects(sb.register(name.toUpperCase(), PASSWORD), isError("conflict", 409));
  await assert.rejects(sb.register("x", PASSWORD), isError("unprocessable", 422));
  await assert.rejects(sb.login(name, "wrong password!"), isError("unauthorized", 401));
  await assert.rejects(sb.api.rooms.list(), isError("unauthorized", 401), "not logged in");
  await sb.login(name, PASSWORD);
  await assert.rejects(sb.api.users.get("00000000-0000-0000-0000-000000000000"), isError("not_found", 404));
  await assert.rejects(sb.api.posts.create("x".repeat(8000)), isError("too_large", 413));
  sb.close();
});

test("socket refusals reject the request with the server's code", async () => {
  const a = await userClient(server.url);
  const b = await userClient(server.url);
  await assert.rejects(a.publish(`user:${b.user!.id}`, { hi: 1 }), isError("forbidden"));
  await assert.rejects(a.publish("not a channel", {}), isError("bad_request"));
  let deep: unknown = 0;
  for (let i = 0; i < 40; i++) deep = [deep];
  await assert.rejects(a.publish("room:deep", deep as never), isError("bad_request"), "data nested deeper than 32 levels");
  // Past the frame limit the server would close the socket (1009); the SDK refuses it first
  // rather than resend it after every reconnect.
  await assert.rejects(a.publish("room:big", { text: "x".repeat(5000) }), isError("too_large"));
  assert.equal(a.pendingPublishes, 0);
  a.close();
  b.close();
});

test("a refused subscription ends with forbidden: ready rejects and onError runs", async () => {
  const a = await userClient(server.url);
  const b = await userClient(server.url);
  const errors: SwitchboardError[] = [];
  const sub = b.subscribe(`feed:${a.user!.id}`, { onError: (e) => errors.push(e) });
  await assert.rejects(sub.ready, isError("forbidden"));
  assert.equal(sub.state, "ended");
  assert.equal(errors.length, 1);
  const room = `plans${Date.now()}`;
  await a.api.rooms.create({ name: room, private: true, members: [] });
  await assert.rejects(b.subscribe(`room:${room}`).ready, isError("forbidden"));
  await assert.rejects(b.history(`room:${room}`), isError("forbidden"));
  a.close();
  b.close();
});

test("publishing past the per-connection budget is rate_limited, and retryable", async () => {
  const a = await userClient(server.url);
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => a.publish("room:budget", { i })));
  const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as SwitchboardError);
  assert.ok(refused.length >= 5, `${refused.length} of 10 refused`);
  for (const e of refused) {
    assert.equal(e.code, "rate_limited");
    assert.equal(e.retryable, true);
  }
  a.close();
});
