// What the SDK tests run against: a real `switchboard` process on port 0 (embedded SQLite in a
// temporary directory, or PostgreSQL when asked), and a TCP proxy in front of it that the tests
// use to kill sockets, refuse new ones, or swallow traffic without closing (a dead path).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Switchboard, type SwitchboardOptions } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
// build/test/harness.js → the repository root is four levels up.
const root = path.resolve(here, "../../../..");

export function serverBinary(): string {
  if (process.env.SWITCHBOARD_BIN) return process.env.SWITCHBOARD_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "target");
  return path.join(target, "debug", "switchboard");
}

export interface Server {
  url: string;
  port: number;
  process: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

/** Settings every test server gets: loopback only, and throttles that many test users fit in. */
const TEST_ENV: Record<string, string> = {
  SWITCHBOARD_BIND: "127.0.0.1:0",
  SWITCHBOARD_ADMIN_BIND: "off",
  SWITCHBOARD_REGISTER_PER_IP: "10000",
  SWITCHBOARD_REGISTER_PER_MIN: "10000",
  SWITCHBOARD_LOGIN_PER_IP: "10000",
  SWITCHBOARD_LOGIN_PER_USER: "10000",
  SWITCHBOARD_HASH_CONCURRENCY: "2",
  RUST_LOG: "warn",
};

export async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const dir = mkdtempSync(path.join(tmpdir(), "sb-sdk-"));
  const child = spawn(serverBinary(), [], {
    env: { ...process.env, ...TEST_ENV, SWITCHBOARD_DATA_DIR: dir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      output += d.toString();
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    process: child,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy the test controls: `kill()` resets every socket, `down()` refuses new ones too. */
export class Proxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<[net.Socket, net.Socket]>();
  #mode: "up" | "down" | "blackhole" = "up";
  port = 0;

  constructor(readonly upstreamPort: number) {
    this.#server = net.createServer((client) => this.#accept(client));
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get open(): number {
    return this.#pairs.size;
  }

  /** Resets every proxied connection (what a client sees when a node or a NAT dies). */
  kill(): void {
    for (const [a, b] of this.#pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.#pairs.clear();
  }

  /** Kills, and resets new connections until `up()`. */
  down(): void {
    this.#mode = "down";
    this.kill();
  }

  /** Keeps the sockets open but forwards nothing either way: a path that died silently. */
  blackhole(): void {
    this.#mode = "blackhole";
    for (const [a, b] of this.#pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  up(): void {
    this.#mode = "up";
  }

  async close(): Promise<void> {
    this.kill();
    await new Promise((r) => this.#server.close(r));
  }

  #accept(client: net.Socket): void {
    if (this.#mode !== "up") {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.upstreamPort, "127.0.0.1");
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.#pairs.add(pair);
    const drop = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

let counter = 0;

/** A unique username (3–32 of the allowed characters). */
export function username(prefix = "u"): string {
  counter += 1;
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}${counter}`.slice(0, 32);
}

export const PASSWORD = "correct horse battery";

/** Registers and logs in a fresh user on a new client. */
export async function userClient(url: string, opts: Partial<SwitchboardOptions> = {}): Promise<Switchboard> {
  const sb = new Switchboard({ url, ...opts });
  const name = username();
  await sb.register(name, PASSWORD);
  await sb.login(name, PASSWORD);
  return sb;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `cond()` holds, polling; fails with `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
