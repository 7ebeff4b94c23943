// Publishes wait here until a socket acks them: those made while disconnected, and those in
// flight when a socket died. Both are sent (again) in their original order after reconnecting,
// each with the idempotency key it was given when first made, so a retry of a publish whose ack
// was lost is recognised by a server that keeps keys (issue 15) instead of stored twice.
// The queue is bounded: past `limit`, publish() rejects at once with `outbox_full`.

import type { Connection } from "./connection.js";
import { SwitchboardError } from "./errors.js";
import type { Json } from "./types.js";

interface Entry {
  channel: string;
  data: Json;
  key: string;
  inFlight: boolean;
  resolve(offset: number): void;
  reject(err: SwitchboardError): void;
}

export class Outbox {
  #entries: Entry[] = [];

  constructor(
    readonly limit: number,
    /** Refuse a publish whose frame would exceed this (the server's SWITCHBOARD_MAX_FRAME_BYTES). */
    readonly maxFrameBytes: number,
    readonly measure: (channel: string, data: Json, key: string) => number,
  ) {}

  get size(): number {
    return this.#entries.length;
  }

  add(channel: string, data: Json, key: string): Promise<number> {
    if (this.#entries.length >= this.limit) {
      return Promise.reject(new SwitchboardError("outbox_full", `${this.limit} publishes are already waiting`));
    }
    const size = this.measure(channel, data, key);
    if (size > this.maxFrameBytes) {
      return Promise.reject(new SwitchboardError("too_large", `the publish frame is ${size} bytes, the limit ${this.maxFrameBytes}`));
    }
    return new Promise<number>((resolve, reject) => {
      this.#entries.push({ channel, data, key, inFlight: false, resolve, reject });
    });
  }

  /** Sends every entry not in flight, in order, on a ready connection. */
  flush(connection: Connection): void {
    for (const entry of this.#entries) {
      if (entry.inFlight || !connection.ready) continue;
      entry.inFlight = true;
      connection
        .request(
          { type: "publish", channel: entry.channel, data: entry.data, idempotency_key: entry.key },
          {
            lost: (close) => {
              // 1009: a frame over the server's limit. Sent again it would only close the next
              // socket too.
              if (close.code === 1009) {
                this.#remove(entry);
                entry.reject(new SwitchboardError("too_large", "the publish is larger than the server's frame limit"));
              } else entry.inFlight = false;
            },
          },
        )
        .then(
          (ack) => {
            this.#remove(entry);
            entry.resolve(ack.offset ?? 0);
          },
          (err: unknown) => {
            this.#remove(entry);
            entry.reject(err instanceof SwitchboardError ? err : new SwitchboardError("protocol", String(err)));
          },
        );
    }
  }

  /** Rejects everything waiting (the client closed, or the login ended). */
  rejectAll(err: SwitchboardError): void {
    for (const entry of this.#entries.splice(0)) entry.reject(err);
  }

  #remove(entry: Entry): void {
    const i = this.#entries.indexOf(entry);
    if (i >= 0) this.#entries.splice(i, 1);
  }
}
