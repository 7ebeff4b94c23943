// How frames travel: JSON text frames (the default, no dependency) or MessagePack binary frames
// (`./msgpack`, which needs the optional `@msgpack/msgpack`). The server answers in the encoding
// the subprotocol names, and accepts either.

import type { ClientFrame, ServerFrame } from "./types.js";

export interface Codec {
  /** The `Sec-WebSocket-Protocol` that selects this encoding. */
  readonly subprotocol: string;
  encode(frame: ClientFrame): string | Uint8Array;
  /** Decodes one frame; throws on anything that is not a frame. */
  decode(data: string | ArrayBuffer): ServerFrame;
}

const text = new TextDecoder();

export const jsonCodec: Codec = {
  subprotocol: "switchboard.v1.json",
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    const value: unknown = JSON.parse(typeof data === "string" ? data : text.decode(data));
    return asFrame(value);
  },
};

/** Checks the one thing every frame has, so a stray value never reaches the dispatcher. */
export function asFrame(value: unknown): ServerFrame {
  if (typeof value !== "object" || value === null || typeof (value as { type?: unknown }).type !== "string") {
    throw new TypeError("not a Switchboard frame");
  }
  return value as ServerFrame;
}
