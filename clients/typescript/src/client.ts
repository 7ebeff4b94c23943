// The client an application holds: one login, one socket shared by every subscription, the
// offline outbox, and the REST API.

import { Api } from "./api.js";
import { Auth } from "./auth.js";
import type { BackoffOptions } from "./backoff.js";
import { jsonCodec, type Codec } from "./codec.js";
import { Connection, type ConnectionState, type StateChange } from "./connection.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import { Http } from "./http.js";
import { Outbox } from "./outbox.js";
import { MemoryOffsetStore, MemoryTokenStore, type OffsetStore, type TokenStore } from "./stores.js";
import { Subscription, type AnySubscription, type SubscribeOptions, type SubscriptionHost } from "./subscription.js";
import type { Json, Message, PresencePage, ServerFrame, UserInfo } from "./types.js";

export interface SwitchboardOptions {
  /** The server's base URL, e.g. `https://rt.example.com` (the socket is `<url>/ws`). */
  url: string;
  /** Where the login is kept. Default: memory (a reload logs out); see `StorageTokenStore`. */
  tokenStore?: TokenStore;
  /** Where each channel's last offset is kept. Default: memory; see `StorageOffsetStore`. */
  offsetStore?: OffsetStore;
  /** JSON (default) or `msgpackCodec()` from `@switchboard/client/msgpack`. */
  codec?: Codec;
  /** Publishes that may wait for a socket, at most. Default 1000. */
  outboxLimit?: number;
  /**
   * The server's frame limit (`SWITCHBOARD_MAX_FRAME_BYTES`, default 64 KiB): larger publishes
   * are refused with `too_large` before sending, since the server would close the socket.
   */
  maxFrameBytes?: number;
  backoff?: BackoffOptions;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  requestTimeoutMs?: number;
  stableAfterMs?: number;
  /** Default: the global `WebSocket` (browsers, Node >= 22, Node 20 with --experimental-websocket). */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
}

export interface ClientEvents {
  state: StateChange;
  /** An error no request or subscription owns (a server `error` frame without `id`, say). */
  error: SwitchboardError;
  /** The login ended: logout, a revoked session (close 4001), or a refused refresh. */
  logged_out: { reason: "logout" | "revoked" | "refresh_failed" };
  /** The login changed (login or refresh). */
  login: UserInfo;
}

export interface PublishOptions {
  /**
   * Identifies this publish across retries (1–64 chars). Default: a random UUID. The SDK resends
   * an unacked publish after a reconnect with the same key.
   */
  idempotencyKey?: string;
}

export class Switchboard extends Emitter<ClientEvents> {
  readonly auth: Auth;
  readonly api: Api;
  readonly connection: Connection;
  readonly #offsets: OffsetStore;
  readonly #outbox: Outbox;
  readonly #subs = new Map<string, AnySubscription>();
  /** The last typing signal sent per channel, for the SDK's own pace (see `typing`). */
  readonly #typingSent = new Map<string, { at: number; typing: boolean }>();
  readonly #host: SubscriptionHost;

  constructor(opts: SwitchboardOptions) {
    super();
    const fetchImpl = opts.fetch ?? globalThis.fetch?.bind(globalThis);
    const WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: SwitchboardOptions["WebSocket"] }).WebSocket;
    if (!fetchImpl) throw new Error("no fetch: pass `fetch` in the options");
    if (!WebSocketImpl) {
      throw new Error("no WebSocket: pass `WebSocket` in the options (on Node 20, or run it with --experimental-websocket)");
    }
    const base = new URL(opts.url);
    this.auth = new Auth(opts.tokenStore ?? new MemoryTokenStore());
    const http = new Http(base.href, fetchImpl, this.auth);
    this.auth.attach(http);
    this.api = new Api(http);
    this.#offsets = opts.offsetStore ?? new MemoryOffsetStore();
    const codec = opts.codec ?? jsonCodec;
    this.#outbox = new Outbox(opts.outboxLimit ?? 1000, opts.maxFrameBytes ?? 65_536, (channel, data, key) => {
      const frame = codec.encode({ type: "publish", id: 2 ** 31, channel, data, idempotency_key: key });
      return typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
    });

    const ws = new URL("ws", base.href.endsWith("/") ? base.href : base.href + "/");
    ws.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    this.connection = new Connection(ws.href, codec, this.auth, WebSocketImpl, {
      backoff: opts.backoff,
      pingIntervalMs: opts.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      stableAfterMs: opts.stableAfterMs,
    });
    this.#host = {
      connection: this.connection,
      offsets: this.#offsets,
      // Offsets are per user: another login in the same browser starts from its own.
      offsetKey: (channel) => `${this.auth.user?.id ?? ""} ${channel}`,
      selfId: () => this.auth.user?.id,
      remove: (sub) => {
        if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
      },
    };

    this.connection.on("state", (change) => {
      if (change.state !== "connected") for (const sub of this.#subs.values()) sub.suspend();
      this.emit("state", change);
    });
    this.connection.on("open", () => {
      for (const sub of this.#subs.values()) sub.start();
      this.#outbox.flush(this.connection);
    });
    this.connection.on("frame", (frame) => this.#route(frame));
    this.connection.on("error", (err) => this.emit("error", err));
    this.auth.on("tokens", (t) => {
      // After a new login, whatever was subscribed or queued before goes on by itself.
      const idle = this.connection.state === "idle" || this.connection.state === "closed";
      if (idle && (this.#subs.size > 0 || this.#outbox.size > 0)) this.connect();
      this.emit("login", t.user);
    });
    this.auth.on("ended", (e) => {
      this.connection.close();
      this.#outbox.rejectAll(new SwitchboardError("unauthorized", "logged out"));
      this.emit("logged_out", e);
    });
  }

  /** The logged-in user, or null. */
  get user(): UserInfo | null {
    return this.auth.user;
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  register(username: string, password: string): Promise<UserInfo> {
    return this.auth.register(username, password);
  }

  login(username: string, password: string): Promise<UserInfo> {
    return this.auth.login(username, password);
  }

  /** Revokes the session everywhere and closes the socket. Subscriptions stay, for a next login. */
  async logout(): Promise<void> {
    await this.auth.logout();
  }

  /** Opens the socket (subscribe and publish do it too) and keeps it open until `close()`. */
  connect(): void {
    this.connection.connect();
  }

  /**
   * Subscribes to a channel, now or as soon as the socket is up, and after every reconnect from
   * the last offset delivered. Subscribing again to a channel replaces the earlier subscription.
   */
  subscribe<D = Json>(channel: string, opts: SubscribeOptions<D> = {}): Subscription<D> {
    this.#subs.get(channel)?.unsubscribe();
    const sub = new Subscription<D>(channel, this.#host, opts);
    this.#subs.set(channel, sub);
    if (this.connection.ready) sub.start();
    else this.connect();
    return sub;
  }

  /** The live subscription to `channel`, if any. */
  subscription<D = Json>(channel: string): Subscription<D> | undefined {
    return this.#subs.get(channel) as Subscription<D> | undefined;
  }

  /**
   * Publishes and resolves with the stored offset once the server has it durably. While the
   * socket is down the publish waits in the outbox (bounded, see `outboxLimit`) and goes out
   * after the reconnect, in order with the others.
   */
  publish(channel: string, data: Json, opts: PublishOptions = {}): Promise<number> {
    const key = opts.idempotencyKey ?? randomKey();
    if (key.length < 1 || key.length > 64) {
      return Promise.reject(new SwitchboardError("bad_request", "an idempotency key has 1 to 64 characters"));
    }
    const offset = this.#outbox.add(channel, data, key);
    if (this.connection.ready) this.#outbox.flush(this.connection);
    else this.connect();
    return offset;
  }

  /** Publishes waiting for a socket (or for their ack). */
  get pendingPublishes(): number {
    return this.#outbox.size;
  }

  /**
   * A page of history, ascending: the messages just before `before` (the newest page when
   * absent). Over the socket when it is up, else over HTTP.
   */
  async history(channel: string, q: { before?: number; limit?: number } = {}): Promise<Message[]> {
    if (this.connection.ready) {
      try {
        const ack = await this.connection.request({ type: "history", channel, before: q.before, limit: q.limit });
        return ack.messages ?? [];
      } catch (err) {
        if (!(err instanceof SwitchboardError) || (err.code !== "disconnected" && err.code !== "timeout")) throw err;
      }
    }
    return this.api.channels.history(channel, q);
  }

  /** One page of who is online in a `room:` channel (needs the socket). */
  async presence(channel: string, q: { cursor?: string; limit?: number } = {}): Promise<PresencePage> {
    await this.#connected();
    const ack = await this.connection.request({ type: "presence", channel, cursor: q.cursor, limit: q.limit });
    return ack.presence ?? { count: 0, users: [] };
  }

  /**
   * Tells the channel's other subscribers that this user is typing (`false`: stopped). Call it
   * on every keystroke: the SDK sends at most one start per channel every 3 s (the server allows
   * one per 2 s, and others show it for 6 s) and a stop only after a start. Needs a live
   * subscription to the `room:` channel; dropped while disconnected (a late signal is wrong).
   */
  typing(channel: string, typing = true): void {
    const now = Date.now();
    const last = this.#typingSent.get(channel);
    if (typing && last?.typing && now - last.at < TYPING_EVERY_MS) return;
    if (!typing && !last?.typing) return;
    if (this.connection.signal({ type: "typing", channel, typing })) {
      this.#typingSent.set(channel, { at: now, typing });
    }
  }

  /** Closes the socket for good; publishes still waiting reject with `closed`. */
  close(): void {
    this.connection.dispose();
    this.auth.dispose();
    for (const sub of [...this.#subs.values()]) sub.unsubscribe();
    this.#outbox.rejectAll(new SwitchboardError("closed", "the client was closed"));
  }

  /** Resolves once the socket is up (connecting it if needed). */
  #connected(): Promise<void> {
    if (this.connection.ready) return Promise.resolve();
    this.connect();
    return new Promise((resolve, reject) => {
      const off = this.connection.on("state", (change) => {
        if (change.state === "connected") {
          off();
          resolve();
        } else if (change.state === "closed") {
          off();
          reject(new SwitchboardError("closed", "the connection was closed"));
        }
      });
    });
  }

  #route(frame: ServerFrame): void {
    switch (frame.type) {
      case "message":
        this.#subs.get(frame.channel)?.deliver(frame as Message<unknown>);
        return;
      case "join":
      case "leave":
        this.#subs.get(frame.channel)?.presence(frame.type, frame.user);
        return;
      case "typing":
        this.#subs.get(frame.channel)?.typingSignal(frame);
        return;
      case "read":
        this.#subs.get(frame.channel)?.readSignal(frame);
        return;
      case "error":
        if (frame.channel !== undefined) this.#subs.get(frame.channel)?.ended(SwitchboardError.fromFrame(frame));
        return;
      default:
        return;
    }
  }
}

/** The SDK's own pace for typing starts: inside the server's 2 s rule with room for jitter. */
const TYPING_EVERY_MS = 3_000;

const utf8 = new TextEncoder();

function utf8Length(s: string): number {
  // Cheap exact answer for ASCII, the common case; encode only when it could differ.
  return /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).byteLength;
}

function randomKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}
