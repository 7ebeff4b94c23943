#!/usr/bin/env node
// How long the demo page takes to come back after its node is killed (-9) behind the load
// balancer: two nodes on PostgreSQL and Redis behind nginx (test/cluster.mjs), one page in a
// room, and per try: kill the node that holds the page's socket, publish 5 messages through the
// other, wait for the page's indicator to say "connected" and for all 5 to show (each exactly
// once, in order: the same checks as the test), then restart the killed node.
//
//   node scripts/measure-reconnect.mjs [--tries 7]
//
// Needs the server binary (SWITCHBOARD_BIN, default $CARGO_TARGET_DIR/debug/switchboard),
// nginx, PostgreSQL on 127.0.0.1:5432 (user root, trust) and Redis on 127.0.0.1:6379.
// The reconnect delay is mostly the SDK's first backoff step, a random 0–500 ms (full jitter);
// tries are 11 s apart so that each starts from that first step (see STABLE_MS).
import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { killHolderAndMeasure, median, missing, startCluster } from "../test/cluster.mjs";
import * as H from "../test/harness.mjs";

const STABLE_MS = 11_000;
const { values } = parseArgs({ options: { tries: { type: "string", default: "7" } } });
const tries = Number(values.tries);
if (!Number.isInteger(tries) || tries < 1) throw new Error("--tries takes a positive whole number");
const why = await missing();
if (why) {
  console.error(`cannot run the cluster here: ${why}`);
  process.exit(1);
}

const cluster = await startCluster({ nodes: 2 });
const browser = await H.launchBrowser();
const results = [];
try {
  const { page } = await H.openPerson(browser, cluster.url);
  const room = H.unique("measure");
  await H.signUp(page, H.unique("mea"));
  await H.createRoom(page, room);
  const publisher = await H.apiUser(cluster.url, H.unique("pub"));
  await H.apiSay(cluster.url, publisher, room, "warm-up");
  await H.waitForCount(page, 1);
  for (let i = 0; i < tries; i++) {
    const r = await killHolderAndMeasure(cluster, page, { room, publisher, count: 5, tag: `try${i + 1}`, assert });
    results.push(r);
    console.log(
      `try ${i + 1}: killed node${r.killed}; connected again after ${r.reconnectMs} ms; all 5 messages shown after ${r.deliveredMs} ms`,
    );
    await cluster.restart(r.killed);
    // The SDK resets its backoff only once a connection has stayed up 10 s (stableAfterMs):
    // kills closer together than that measure the backoff's growth (0–1 s, 0–2 s, ...), not a
    // crash's cost. Waiting also takes nginx past the restarted node's fail_timeout (1 s).
    await H.sleep(STABLE_MS);
  }
} finally {
  await browser.close();
  await cluster.stop();
}
const reconnect = results.map((r) => r.reconnectMs);
const delivered = results.map((r) => r.deliveredMs);
console.log(`reconnect (kill -9 → connected): median ${median(reconnect)} ms over ${results.length} tries: ${reconnect.join(", ")} ms`);
console.log(`delivery (kill -9 → all messages shown): median ${median(delivered)} ms: ${delivered.join(", ")} ms`);
