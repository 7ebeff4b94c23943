// A two-node cluster for the failover test and scripts/measure-reconnect.mjs: the nodes share
// a fresh PostgreSQL database, Redis (under a prefix of their own) and the token secret, behind
// nginx as a WebSocket load balancer without sticky sessions, like scripts/cluster.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as H from "./harness.mjs";

const run = promisify(execFile);
const PSQL = ["-h", "127.0.0.1", "-U", "root", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atc"];

/** Why the cluster cannot run here (a missing tool or service), or null. */
export async function missing() {
  for (const [tool, args] of [
    ["nginx", ["-v"]],
    ["psql", [...PSQL, "select 1"]],
    ["redis-cli", ["ping"]],
  ]) {
    try {
      await run(tool, args);
    } catch (err) {
      return `${tool}: ${err.message.split("\n")[0]}`;
    }
  }
  return null;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startCluster({ nodes = 2 } = {}) {
  const id = H.unique("c").toLowerCase().replace(/[^a-z0-9]/g, "");
  const db = `sb_demo_${id}`;
  const dir = await mkdtemp(join(tmpdir(), "sb-demo-cluster-"));
  await run("psql", [...PSQL, `CREATE DATABASE ${db}`]);
  const prefix = `sbdemo:${id}:`;
  const env = {
    DATABASE_URL: `postgres://root@127.0.0.1:5432/${db}`,
    REDIS_URL: "redis://127.0.0.1:6379",
    SWITCHBOARD_REDIS_PREFIX: prefix,
    SWITCHBOARD_SECRET: randomBytes(32).toString("hex"),
    SWITCHBOARD_DEMO: "true",
    SWITCHBOARD_TRUSTED_PROXIES: "127.0.0.1",
    SWITCHBOARD_ADMIN_BIND: "127.0.0.1:0",
  };
  const cluster = {
    dir,
    db,
    prefix,
    /** The running node processes, by index (a killed one stays until `restart`). */
    nodes: [],
    url: null,
    nginx: null,
    async restart(i) {
      const old = cluster.nodes[i];
      await old.stop();
      cluster.nodes[i] = await H.startServer(
        { ...env, SWITCHBOARD_DATA_DIR: join(dir, `node${i}`), SWITCHBOARD_BIND: `127.0.0.1:${old.port}` },
        { name: `node${i}`, front: false },
      );
      return cluster.nodes[i];
    },
    alive() {
      return cluster.nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
    },
    /** Authenticated WebSockets per node, from each live node's admin /metrics. */
    async sockets() {
      return Promise.all(
        cluster.nodes.map(async (n) => {
          if (!cluster.alive().includes(n) || !n.adminPort) return 0;
          const text = await (await fetch(`http://127.0.0.1:${n.adminPort}/metrics`)).text();
          const m = /^switchboard_connections\s+(\d+)/m.exec(text);
          return m ? Number(m[1]) : 0;
        }),
      );
    },
    /** The index of the node holding the only socket (waits until exactly one node has it). */
    async holder(ms = 10_000) {
      let last = [];
      try {
        return await H.waitFor(
          async () => {
            last = await cluster.sockets();
            const total = last.reduce((a, b) => a + b, 0);
            return total === 1 ? last.findIndex((c) => c === 1) + 1 : 0;
          },
          ms,
          "one socket in the cluster",
        ).then((i) => i - 1);
      } catch (err) {
        throw new Error(`${err.message}; sockets per node: ${last}`);
      }
    },
    async stop() {
      cluster.nginx?.kill("SIGQUIT");
      await Promise.all(cluster.nodes.map((n) => n.stop()));
      if (cluster.nginx && cluster.nginx.exitCode === null) await new Promise((r) => cluster.nginx.once("exit", r));
      await run("psql", [...PSQL, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]).catch(() => undefined);
      const { stdout } = await run("redis-cli", ["--scan", "--pattern", `${prefix}*`]).catch(() => ({ stdout: "" }));
      const keys = stdout.split("\n").filter(Boolean);
      for (let i = 0; i < keys.length; i += 100) await run("redis-cli", ["del", ...keys.slice(i, i + 100)]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    // One after the other: the first applies the migrations to the fresh database.
    for (let i = 0; i < nodes; i++) {
      await mkdir(join(dir, `node${i}`));
      cluster.nodes.push(await H.startServer({ ...env, SWITCHBOARD_DATA_DIR: join(dir, `node${i}`) }, { name: `node${i}`, front: false }));
    }
    const lbPort = await freePort();
    await mkdir(join(dir, "tmp"));
    const upstreams = cluster.nodes.map((n) => `        server 127.0.0.1:${n.port} max_fails=1 fail_timeout=1s;`).join("\n");
    await writeFile(
      join(dir, "nginx.conf"),
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream switchboard {
${upstreams}
    }
    server {
        listen 127.0.0.1:${lbPort};
${process.env.DEMO_FROM_DIST === "1" ? fromDist() : ""}        location / {
            proxy_pass http://switchboard;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            # The Host the browser sent, port included ($host drops it): the server's
            # same-origin WebSocket check compares the page's Origin with it.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
`,
    );
    cluster.nginx = spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "nginx-error.log"), "-g", "daemon off;"], {
      stdio: "ignore",
    });
    cluster.url = `http://127.0.0.1:${lbPort}`;
    await H.waitFor(async () => (await fetch(`${cluster.url}/readyz`).catch(() => null))?.ok === true, 10_000, "nginx");
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

// DEMO_FROM_DIST=1 (see harness.mjs): nginx serves dist/ from disk, with the server's CSP.
function fromDist() {
  const dist = fileURLToPath(new URL("../dist/", import.meta.url));
  const csp = H.CSP;
  return [
    ["= /", "index.html", "text/html"],
    ["= /demo/app.js", "app.js", "text/javascript"],
    ["= /demo/app.css", "app.css", "text/css"],
  ]
    .map(
      ([loc, file, type]) =>
        `        location ${loc} { root ${dist}; try_files /${file} =404; default_type ${type}; add_header Content-Security-Policy "${csp}"; }\n`,
    )
    .join("");
}

/**
 * Kills (SIGKILL) the node holding the page's socket, publishes `count` messages through the
 * surviving node while the page is away, and measures: the kill → the page's indicator says
 * connected again (`reconnectMs`), and → every message is on the page (`deliveredMs`). Checks
 * that the page then shows each message exactly once, in order.
 */
export async function killHolderAndMeasure(cluster, page, { room, publisher, count = 5, tag = "kill", assert }) {
  const holder = await cluster.holder();
  const survivor = cluster.alive().find((n) => n !== cluster.nodes[holder]);
  const before = await H.shownMessages(page);
  const t0 = Date.now();
  await cluster.nodes[holder].kill();
  const sends = (async () => {
    for (let i = 0; i < count; i++) await H.apiSay(survivor.url, publisher, room, `${tag} ${i}`);
  })();
  const reconnected = await page.waitForFunction(
    (t0) => {
      const el = document.querySelector("[data-testid=conn-state]");
      const at = Number(el?.getAttribute("data-changed-at"));
      return el?.getAttribute("data-state") === "connected" && at > t0 ? at : false;
    },
    t0,
    { timeout: 30_000, polling: 10 },
  );
  const reconnectedAt = await reconnected.jsonValue();
  await sends;
  await H.waitForCount(page, before.length + count, 30_000);
  const deliveredAt = Date.now();
  await H.sleep(300); // a duplicate would show by now
  const after = await H.shownMessages(page);
  H.assertExactlyOnceInOrder(assert, after, { first: before[0]?.offset ?? 1, count: before.length + count });
  assert.deepEqual(after.slice(0, before.length), before, "what was shown before the kill is unchanged");
  assert.deepEqual(
    after.slice(before.length).map((m) => m.text),
    [...Array(count).keys()].map((i) => `${tag} ${i}`),
    "the messages sent during the outage, in order",
  );
  return { killed: holder, reconnectMs: reconnectedAt - t0, deliveredMs: deliveredAt - t0 };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
