// One channel's subscription, across every socket the client goes through: it remembers the
// last offset delivered and resumes from there with `since` after each reconnect, so the
// application sees each offset exactly once and in order.
//
// The server already promises that within one subscription (PROTOCOL.md#delivery-guarantees);
// the checks here hold the line across reconnects and against anything that slips: a repeated
// offset is dropped, an early one is held back while the missing ones are fetched from history
// (or, for a wide gap, replayed by subscribing again from the last offset).

import type { Connection } from "./connection.js";
import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import type { OffsetStore } from "./stores.js";
import type { AckFrame, Json, Message, ReadFrame, TypingFrame, UserInfo } from "./types.js";

/** How far a member has read a room (a `read` frame). */
export interface ReadReceipt {
  user: UserInfo;
  offset: number;
}

export interface SubscribeOptions<D = Json> {
  /**
   * Start after this offset (`0` replays the whole channel). Default: the offset stored for the
   * channel by an earlier subscription (see `offsetStore`), else only messages from now on.
   */
  since?: number;
  /** Use the offset store to resume (default true). */
  resume?: boolean;
  onMessage?: (message: Message<D>) => void;
  onJoin?: (user: UserInfo) => void;
  onLeave?: (user: UserInfo) => void;
  /** Who else is typing now (changes as signals arrive and lapse); see `Switchboard.typing`. */
  onTyping?: (users: UserInfo[]) => void;
  /** A member's read marker moved (a read receipt; the user's own too, from any device). */
  onRead?: (receipt: ReadReceipt) => void;
  /** The subscription ended: the server refused or ended it (e.g. `forbidden`). */
  onError?: (error: SwitchboardError) => void;
  /** Messages an async iterator may hold unread before it fails with `too_large`. Default 10,000. */
  iteratorLimit?: number;
}

export interface SubscriptionEvents<D> {
  message: Message<D>;
  join: UserInfo;
  leave: UserInfo;
  /** Who else is typing in the channel, after every change (a signal, a stop, a lapse). */
  typing: UserInfo[];
  /** A read receipt: `user` read the channel up to `offset` (their own user's too). */
  read: ReadReceipt;
  error: SwitchboardError;
  /** Everything up to the channel's last offset at (re)subscribe time has been delivered. */
  caught_up: { offset: number };
  /** The channel holds fewer messages than this client had seen (its storage was reset). */
  reset: { from: number; to: number };
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  readonly connection: Connection;
  readonly offsets: OffsetStore;
  offsetKey(channel: string): string;
  remove(sub: AnySubscription): void;
  /** The logged-in user's id: their own typing signals are not shown to them. */
  selfId(): string | undefined;
}

// Subscriptions of any payload type, as the client keeps them side by side.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySubscription = Subscription<any>;

export type SubscriptionState = "pending" | "subscribing" | "live" | "ended";

/** Gaps wider than this are replayed by subscribing again rather than by history pages. */
const FILL_MAX = 200;
/** Early messages held back at most; past it the subscription resubscribes from the last offset. */
const HOLD_MAX = 1_000;

export class Subscription<D = Json> extends Emitter<SubscriptionEvents<D>> implements AsyncIterable<Message<D>> {
  #state: SubscriptionState = "pending";
  #last: number | undefined;
  #target = 0;
  #catchingUp = false;
  #held = new Map<number, Message<D>>();
  #filling = false;
  #generation = 0;
  #error: SwitchboardError | null = null;
  #queue: Message<D>[] = [];
  #waiters: { resolve(r: IteratorResult<Message<D>>): void; reject(e: unknown): void }[] = [];
  #iterating = false;
  #typing = new Map<string, { user: UserInfo; timer: ReturnType<typeof setTimeout> }>();
  #reads = new Map<string, ReadReceipt>();
  readonly #iteratorLimit: number;
  readonly #ready: Promise<void>;
  #markReady!: () => void;
  #failReady!: (e: unknown) => void;

  constructor(
    readonly channel: string,
    readonly host: SubscriptionHost,
    opts: SubscribeOptions<D> = {},
  ) {
    super();
    this.#iteratorLimit = opts.iteratorLimit ?? 10_000;
    const stored = opts.resume === false ? undefined : host.offsets.get(host.offsetKey(channel));
    this.#last = opts.since ?? stored;
    if (opts.onMessage) this.on("message", opts.onMessage);
    if (opts.onJoin) this.on("join", opts.onJoin);
    if (opts.onLeave) this.on("leave", opts.onLeave);
    if (opts.onTyping) this.on("typing", opts.onTyping);
    if (opts.onRead) this.on("read", opts.onRead);
    if (opts.onError) this.on("error", opts.onError);
    this.#ready = new Promise((resolve, reject) => {
      this.#markReady = resolve;
      this.#failReady = reject;
    });
    // Nobody may await `ready`; its rejection is reported through `error` as well.
    this.#ready.catch(() => undefined);
  }

  get state(): SubscriptionState {
    return this.#state;
  }

  /** The last offset delivered (or the `since` it started from). */
  get lastOffset(): number | undefined {
    return this.#last;
  }

  /** Resolves at the first subscribe `ack`; rejects if the server refuses the subscription. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Ends the subscription (also on the server, when connected). */
  unsubscribe(): void {
    if (this.#state === "ended") return;
    this.#end(null);
    if (this.host.connection.ready) {
      this.host.connection.request({ type: "unsubscribe", channel: this.channel }).catch(() => undefined);
    }
  }

  /** (Re)subscribes on the current socket, from the last offset delivered. */
  start(): void {
    if (this.#state === "ended" || !this.host.connection.ready) return;
    const generation = ++this.#generation;
    this.#state = "subscribing";
    this.#held.clear();
    const since = this.#last;
    this.host.connection
      .request(
        { type: "subscribe", channel: this.channel, since },
        // Synchronously at the ack, before any later frame of the socket is handled: the replay
        // and live messages follow the ack at once.
        { onAck: (ack) => generation === this.#generation && this.#subscribed(ack, since) },
      )
      .catch((err: unknown) => {
        if (generation !== this.#generation || !(err instanceof SwitchboardError)) return;
        // A dropped socket resubscribes on the next; anything else is the server's answer.
        if (err.code === "disconnected" || err.code === "closed") return;
        if (err.code === "timeout" || err.code === "rate_limited" || err.code === "unavailable") {
          this.#state = "pending";
          setTimeout(() => this.#state === "pending" && this.start(), 1_000);
          return;
        }
        this.#end(err);
      });
  }

  /** The socket went away; `start()` resumes on the next one. */
  suspend(): void {
    if (this.#state === "ended") return;
    this.#state = "pending";
    this.#generation++;
    this.#held.clear();
  }

  /** A frame of this channel from the socket. */
  deliver(message: Message<D>): void {
    if (this.#state === "ended" || this.#state === "pending") return;
    const last = this.#last;
    if (last === undefined || this.#state === "subscribing") {
      // Before the ack is handled (never in practice): hold it, the ack drains.
      this.#held.set(message.offset, message);
      return;
    }
    if (message.offset <= last) return;
    if (message.offset === last + 1) {
      this.#accept(message);
      this.#drain();
      return;
    }
    this.#held.set(message.offset, message);
    if (this.#held.size > HOLD_MAX) {
      this.start();
      return;
    }
    void this.#fill();
  }

  presence(kind: "join" | "leave", user: UserInfo): void {
    if (this.#state !== "ended") this.emit(kind, user);
  }

  /** Who else is typing now. */
  get typingUsers(): UserInfo[] {
    return [...this.#typing.values()].map((t) => t.user);
  }

  /** A `typing` frame for this channel. */
  typingSignal(frame: TypingFrame): void {
    if (this.#state === "ended" || frame.user.id === this.host.selfId()) return;
    const known = this.#typing.get(frame.user.id);
    if (known) clearTimeout(known.timer);
    if (frame.typing) {
      const timer = setTimeout(() => {
        this.#typing.delete(frame.user.id);
        this.emit("typing", this.typingUsers);
      }, frame.ttl_ms);
      (timer as { unref?: () => void }).unref?.();
      this.#typing.set(frame.user.id, { user: frame.user, timer });
    } else if (!known) {
      return;
    } else {
      this.#typing.delete(frame.user.id);
    }
    this.emit("typing", this.typingUsers);
  }

  /**
   * The read receipts seen since subscribing, the furthest per user. Receipts are not replayed:
   * after a (re)subscribe, `api.rooms.readState` gives everyone's marker.
   */
  get readReceipts(): ReadReceipt[] {
    return [...this.#reads.values()];
  }

  /** A `read` frame for this channel. */
  readSignal(frame: ReadFrame): void {
    if (this.#state === "ended") return;
    const known = this.#reads.get(frame.user.id);
    // A marker only moves forward; a receipt overtaken by a later one changes nothing.
    if (known && known.offset >= frame.offset) return;
    const receipt = { user: frame.user, offset: frame.offset };
    this.#reads.set(frame.user.id, receipt);
    this.emit("read", receipt);
  }

  #clearTyping(): void {
    for (const t of this.#typing.values()) clearTimeout(t.timer);
    this.#typing.clear();
  }

  /** The server ended the subscription (an `error` frame naming the channel). */
  ended(error: SwitchboardError): void {
    this.#end(error);
  }

  #subscribed(ack: AckFrame, since: number | undefined): void {
    const top = ack.offset ?? 0;
    if (since === undefined) {
      this.#last = top;
    } else if (since > top) {
      // The channel is shorter than what this client saw: its storage was reset. Start over
      // from its current end rather than drop everything as a duplicate forever.
      this.#last = top;
      this.emit("reset", { from: since, to: top });
    }
    this.#target = top;
    this.#catchingUp = true;
    this.#state = "live";
    this.#markReady();
    this.#drain();
    this.#caughtUp();
  }

  #accept(message: Message<D>): void {
    this.#last = message.offset;
    this.host.offsets.set(this.host.offsetKey(this.channel), message.offset);
    this.emit("message", message);
    if (this.#iterating) {
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve({ value: message, done: false });
      else if (this.#queue.length >= this.#iteratorLimit) {
        this.#fail(new SwitchboardError("too_large", `the iterator fell ${this.#iteratorLimit} messages behind`));
      } else this.#queue.push(message);
    }
    this.#caughtUp();
  }

  #caughtUp(): void {
    if (this.#catchingUp && this.#last !== undefined && this.#last >= this.#target) {
      this.#catchingUp = false;
      this.emit("caught_up", { offset: this.#target });
    }
  }

  #drain(): void {
    if (this.#last === undefined) return;
    for (const offset of [...this.#held.keys()]) {
      if (offset <= this.#last) this.#held.delete(offset);
    }
    let next = this.#held.get(this.#last + 1);
    while (next) {
      this.#held.delete(next.offset);
      this.#accept(next);
      next = this.#held.get(this.#last + 1);
    }
  }

  /** Fetches the offsets missing before the earliest held message from history. */
  async #fill(): Promise<void> {
    if (this.#filling) return;
    this.#filling = true;
    const generation = this.#generation;
    try {
      while (this.#held.size > 0 && this.#last !== undefined && generation === this.#generation) {
        const upto = Math.min(...this.#held.keys());
        const from = this.#last + 1;
        if (upto <= from) {
          this.#drain();
          continue;
        }
        if (upto - from > FILL_MAX) {
          this.start();
          return;
        }
        // History pages may be cut short by size: page backwards until `from` is covered.
        const missing: Message<D>[] = [];
        let before = upto;
        while (before > from) {
          const ack = await this.host.connection.request({
            type: "history",
            channel: this.channel,
            before,
            limit: Math.min(FILL_MAX, before - from),
          });
          const page = ((ack.messages ?? []) as Message<D>[]).filter((m) => m.offset >= from && m.offset < before);
          if (page.length === 0) break;
          missing.unshift(...page);
          before = page[0]!.offset;
        }
        if (generation !== this.#generation) return;
        for (const m of missing) this.deliver(m);
        if (this.#last !== undefined && this.#last < upto - 1) {
          // History does not have them either: replay from the server's own sequence.
          this.start();
          return;
        }
      }
    } catch {
      // The socket died mid-fill: the resubscribe on the next socket replays from `since`.
    } finally {
      this.#filling = false;
    }
  }

  #end(error: SwitchboardError | null): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.#generation++;
    this.#held.clear();
    this.#clearTyping();
    this.host.remove(this);
    if (error) {
      this.#error = error;
      this.#failReady(error);
      this.emit("error", error);
      this.#fail(error);
    } else {
      this.#failReady(new SwitchboardError("closed", "unsubscribed"));
      for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
    }
  }

  #fail(error: SwitchboardError): void {
    this.#error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  [Symbol.asyncIterator](): AsyncIterator<Message<D>> {
    this.#iterating = true;
    return {
      next: () => {
        const value = this.#queue.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.#error) return Promise.reject(this.#error);
        if (this.#state === "ended") return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
