// The one socket a client holds: opening and authenticating it, matching replies to requests,
// noticing that it died, and reopening it without a stampede.
//
// What decides the reconnect delay (docs/PROTOCOL.md#close-codes):
// - full-jitter exponential backoff, reset only once a connection has stayed up for
//   `stableAfterMs` (never on open: a server that accepts and then closes at once, a draining or
//   overloaded node, would otherwise be hammered at the first step's rate by every client);
// - the server's `reconnect.after_ms` (already jittered per client) is a floor;
// - 4002 (token expired) refreshes first, 4001 (session revoked) and a refused login stop.

import type { Auth } from "./auth.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import type { Codec } from "./codec.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import type { AckFrame, ClientFrame, ServerFrame } from "./types.js";

export type ConnectionState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** The close that caused a `disconnected` or `closed` state. */
  close?: { code: number; reason: string };
  /** For `disconnected`: when the next attempt starts. */
  retryInMs?: number;
}

export interface ConnectionEvents {
  state: StateChange;
  /** A frame that is not a reply: `message`, `join`, `leave`, an `error` ending a subscription. */
  frame: ServerFrame;
  /** The socket is open and authenticated: resubscribe, flush what waits. */
  open: void;
  /** An `error` frame that no request and no subscription owns. */
  error: SwitchboardError;
}

export interface ConnectionOptions {
  backoff?: BackoffOptions;
  /** Send a `ping` after this long without any frame from the server. Default 25 s. */
  pingIntervalMs?: number;
  /** Give the connection up as dead this long after that ping. Default 10 s. */
  pongTimeoutMs?: number;
  /** A request without a reply after this long is rejected with `timeout`. Default 15 s. */
  requestTimeoutMs?: number;
  /** A connection up this long resets the backoff when it closes. Default 10 s. */
  stableAfterMs?: number;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;
/** A client frame without its `id`, which the connection assigns. */
export type Request = ClientFrame extends infer F ? (F extends ClientFrame ? Omit<F, "id"> : never) : never;

export interface RequestOptions {
  /** The socket closed before the reply. Default: reject with `disconnected`. */
  lost?: (close: { code: number; reason: string }) => void;
  onAck?: (ack: AckFrame) => void;
  timeoutMs?: number;
}

interface Pending {
  resolve(ack: AckFrame): void;
  reject(err: SwitchboardError): void;
  lost?: (close: { code: number; reason: string }) => void;
  /** Runs at the ack, synchronously, before the socket's next frame is handled. */
  onAck?: (ack: AckFrame) => void;
  timer: ReturnType<typeof setTimeout>;
}

// Closes the server makes on purpose; anything else (1006 above all) means the path died.
const REVOKED = 4001;
const TOKEN_EXPIRED = 4002;
const AUTH_REFUSED = 1008;

export class Connection extends Emitter<ConnectionEvents> {
  #state: ConnectionState = "idle";
  #ws: WebSocket | null = null;
  #authenticated = false;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #backoff: Backoff;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #lastRx = 0;
  #openedAt = 0;
  #pinging = false;
  #serverAfterMs: number | undefined;
  #wanted = false;
  readonly #opts: Required<Omit<ConnectionOptions, "backoff">>;
  readonly #unlisten: (() => void)[] = [];

  constructor(
    readonly url: string,
    readonly codec: Codec,
    readonly auth: Auth,
    readonly WebSocketImpl: WebSocketCtor,
    opts: ConnectionOptions = {},
  ) {
    super();
    this.#backoff = new Backoff(opts.backoff);
    this.#opts = {
      pingIntervalMs: opts.pingIntervalMs ?? 25_000,
      pongTimeoutMs: opts.pongTimeoutMs ?? 10_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 15_000,
      stableAfterMs: opts.stableAfterMs ?? 10_000,
    };
    // A refreshed token goes to the live socket in-band, renewing it (PROTOCOL.md, token lifetime).
    this.#unlisten.push(
      auth.on("tokens", (t) => {
        if (this.#authenticated) {
          this.request({ type: "auth", token: t.accessToken }).catch((err: unknown) => {
            if (err instanceof SwitchboardError) this.emit("error", err);
          });
        }
      }),
    );
    this.#watchEnvironment();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** True when requests can be sent now. */
  get ready(): boolean {
    return this.#authenticated;
  }

  /** Starts connecting (and keeps reconnecting) until `close()`. Idempotent. */
  connect(): void {
    this.#wanted = true;
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#state === "disconnected") {
      this.#retryNow();
      return;
    }
    void this.#open();
  }

  /** Closes the socket: pending requests reject with `closed`, nothing reconnects until `connect()`. */
  close(): void {
    this.#wanted = false;
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#teardown({ code: 1000, reason: "closed by the client" }, "closed");
    ws?.close(1000);
  }

  /** `close()`, and lets go of the page's events and the login's. */
  dispose(): void {
    this.close();
    for (const off of this.#unlisten.splice(0)) off();
  }

  /**
   * Sends a request and resolves with its `ack`; an `error` reply rejects with its code. Only on
   * an authenticated socket (see `ready`); `lost` decides what happens when the socket dies first.
   */
  request(frame: Request, opts: RequestOptions = {}): Promise<AckFrame> {
    if (!this.#ws || (!this.#authenticated && frame.type !== "auth")) {
      return Promise.reject(new SwitchboardError("disconnected", "not connected"));
    }
    return this.#send(this.#ws, frame, opts);
  }

  /**
   * Sends a frame that asks for no reply (a `typing` signal without `id`); false when there is
   * no authenticated socket to send it on (a signal is never queued: late, it is wrong).
   */
  signal(frame: Request): boolean {
    if (!this.#ws || !this.#authenticated) return false;
    try {
      this.#ws.send(this.codec.encode(frame as ClientFrame));
      return true;
    } catch {
      return false;
    }
  }

  #send(ws: WebSocket, frame: Request, opts: RequestOptions): Promise<AckFrame> {
    const id = this.#nextId++;
    return new Promise<AckFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SwitchboardError("timeout", `no reply to ${frame.type} within ${opts.timeoutMs ?? this.#opts.requestTimeoutMs} ms`));
      }, opts.timeoutMs ?? this.#opts.requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, lost: opts.lost, onAck: opts.onAck, timer });
      try {
        ws.send(this.codec.encode({ ...frame, id } as ClientFrame));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new SwitchboardError("disconnected", `send failed: ${String(err)}`, { cause: err }));
      }
    });
  }

  async #open(): Promise<void> {
    this.#setState("connecting");
    let token: string | null;
    try {
      token = await this.auth.accessToken();
    } catch (err) {
      // The refresh endpoint is unreachable: the same as a socket that would not open.
      this.#scheduleRetry({ code: 1006, reason: `refresh failed: ${String(err)}` });
      return;
    }
    if (!this.#wanted) {
      this.#setState("closed");
      return;
    }
    if (token === null) {
      this.#setState("closed", { close: { code: AUTH_REFUSED, reason: "not logged in" } });
      return;
    }
    let ws: WebSocket;
    try {
      ws = new this.WebSocketImpl(this.url, [this.codec.subprotocol]);
    } catch (err) {
      this.#scheduleRetry({ code: 1006, reason: String(err) });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#serverAfterMs = undefined;
    ws.onopen = () => {
      this.#lastRx = Date.now();
      this.#watch();
      this.#send(ws, { type: "auth", token }, {})
        .then(() => {
          if (this.#ws !== ws) return;
          this.#authenticated = true;
          this.#openedAt = Date.now();
          this.#setState("connected");
          this.emit("open", undefined);
        })
        .catch(() => {
          // The server follows a refused `auth` with close 1008; the close handler decides.
        });
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.#ws !== ws) return;
      this.#lastRx = Date.now();
      this.#pinging = false;
      let frame: ServerFrame;
      try {
        frame = this.codec.decode(ev.data as string | ArrayBuffer);
      } catch (err) {
        this.emit("error", new SwitchboardError("protocol", `undecodable frame: ${String(err)}`));
        return;
      }
      this.#dispatch(frame);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.#ws === ws) this.#closed({ code: ev.code, reason: ev.reason });
    };
    ws.onerror = () => {
      // Browsers follow an error with a close event, which carries the code; Node 20's WebSocket
      // does not when the connection fails before opening, so wait briefly, then close it here.
      setTimeout(() => {
        if (this.#ws === ws) this.#closed({ code: 1006, reason: "the connection failed" });
      }, 250);
    };
    // A path that swallows the handshake would leave the socket connecting forever.
    const opening = setTimeout(() => {
      if (this.#ws === ws && !this.#authenticated) this.#dead("no answer to the opening handshake");
    }, this.#opts.requestTimeoutMs);
    (opening as { unref?: () => void }).unref?.();
  }

  #dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case "ack": {
        const p = this.#pending.get(frame.id);
        if (!p) return;
        this.#pending.delete(frame.id);
        clearTimeout(p.timer);
        p.onAck?.(frame);
        p.resolve(frame);
        return;
      }
      case "error": {
        const p = frame.id === undefined ? undefined : this.#pending.get(frame.id);
        if (p && frame.id !== undefined) {
          this.#pending.delete(frame.id);
          clearTimeout(p.timer);
          p.reject(SwitchboardError.fromFrame(frame));
        } else if (frame.channel !== undefined) {
          this.emit("frame", frame);
        } else {
          this.emit("error", SwitchboardError.fromFrame(frame));
        }
        return;
      }
      case "reconnect":
        this.#serverAfterMs = frame.after_ms;
        return;
      case "token_expiring":
        // Usually the refresh timer has already run; this covers a suspended laptop or a
        // throttled background tab whose timer fired late.
        this.auth.refresh().catch((err: unknown) => {
          if (err instanceof SwitchboardError) this.emit("error", err);
        });
        return;
      default:
        this.emit("frame", frame);
    }
  }

  #closed(close: { code: number; reason: string }): void {
    if (close.code === REVOKED) {
      this.#teardown(close, "closed");
      this.auth.revoked();
      return;
    }
    if (close.code === AUTH_REFUSED && !this.#authenticated) {
      // Refused at the handshake: one refresh, then give up if that is refused too.
      this.#teardown(close, "disconnected");
      this.auth
        .refresh()
        .then(() => this.#scheduleRetry(close))
        .catch((err: unknown) => {
          if (err instanceof SwitchboardError && err.code === "unauthorized") this.#setState("closed", { close });
          else this.#scheduleRetry(close);
        });
      return;
    }
    if (close.code === TOKEN_EXPIRED) {
      this.#teardown(close, "disconnected");
      this.auth.refresh().then(
        () => this.#scheduleRetry(close),
        () => this.#scheduleRetry(close),
      );
      return;
    }
    this.#scheduleRetry(close);
  }

  #scheduleRetry(close: { code: number; reason: string }): void {
    const stable = this.#authenticated && Date.now() - this.#openedAt >= this.#opts.stableAfterMs;
    this.#teardown(close, null);
    if (!this.#wanted) {
      this.#setState("closed", { close });
      return;
    }
    if (stable) this.#backoff.reset();
    const delay = Math.max(this.#serverAfterMs ?? 0, this.#backoff.next());
    this.#serverAfterMs = undefined;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#open(), delay);
    this.#setState("disconnected", { close, retryInMs: delay });
  }

  #retryNow(): void {
    if (this.#state !== "disconnected" || !this.#wanted) return;
    clearTimeout(this.#retryTimer);
    void this.#open();
  }

  /** Drops the socket and settles what waited on it; `next` is the state to enter, if any. */
  #teardown(close: { code: number; reason: string }, next: ConnectionState | null): void {
    clearTimeout(this.#watchdog);
    const ws = this.#ws;
    this.#ws = null;
    this.#authenticated = false;
    this.#pinging = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    const code = next === "closed" && !this.#wanted ? "closed" : "disconnected";
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      if (p.lost) p.lost(close);
      else p.reject(new SwitchboardError(code, `connection closed (${close.code} ${close.reason})`));
    }
    if (next) this.#setState(next, { close });
  }

  /** Kills a socket that has gone quiet: the close handshake would wait on the dead path too. */
  #dead(reason: string): void {
    const ws = this.#ws;
    this.#scheduleRetry({ code: 1006, reason });
    try {
      ws?.close(1000);
    } catch {
      // Already closing.
    }
  }

  #watch(): void {
    clearTimeout(this.#watchdog);
    const { pingIntervalMs, pongTimeoutMs } = this.#opts;
    const tick = Math.max(250, Math.min(pingIntervalMs, pongTimeoutMs) / 2);
    this.#watchdog = setTimeout(() => {
      const ws = this.#ws;
      if (!ws) return;
      const quiet = Date.now() - this.#lastRx;
      if (quiet >= pingIntervalMs + pongTimeoutMs) {
        this.#dead(`nothing received for ${quiet} ms`);
        return;
      }
      if (quiet >= pingIntervalMs && !this.#pinging && this.#authenticated) {
        this.#pinging = true;
        this.#send(ws, { type: "ping" }, { timeoutMs: pongTimeoutMs }).catch(() => undefined);
      }
      this.#watch();
    }, tick);
    (this.#watchdog as { unref?: () => void }).unref?.();
  }

  /** Browsers: reconnect at once when the tab comes back or the network returns. */
  #watchEnvironment(): void {
    const doc = (globalThis as { document?: Document }).document;
    const win = (globalThis as { window?: Window }).window;
    if (doc?.addEventListener) {
      const onVisible = () => {
        if (doc.visibilityState !== "visible") return;
        if (this.#state === "disconnected") this.#retryNow();
        else if (this.#authenticated && this.#ws && !this.#pinging) {
          // A background tab's timers were throttled: check the socket now instead of trusting it.
          this.#pinging = true;
          this.#send(this.#ws, { type: "ping" }, { timeoutMs: this.#opts.pongTimeoutMs }).catch(() => {
            if (this.#pinging) this.#dead("no answer to a ping after the tab became visible");
          });
        }
      };
      doc.addEventListener("visibilitychange", onVisible);
      this.#unlisten.push(() => doc.removeEventListener("visibilitychange", onVisible));
    }
    if (win?.addEventListener) {
      const onOnline = () => this.#retryNow();
      win.addEventListener("online", onOnline);
      this.#unlisten.push(() => win.removeEventListener("online", onOnline));
    }
  }

  #setState(state: ConnectionState, extra: Omit<StateChange, "state" | "previous"> = {}): void {
    if (state === this.#state && state !== "disconnected") return;
    const previous = this.#state;
    this.#state = state;
    this.emit("state", { state, previous, ...extra });
  }
}
