// The MessagePack encoding (`switchboard.v1.msgpack`), kept in its own entry point so that
// `@msgpack/msgpack` stays optional: only applications that import this module need it.
//
//   import { msgpackCodec } from "@switchboard/client/msgpack";
//   const client = new Switchboard({ url, codec: msgpackCodec() });

import { decode, encode } from "@msgpack/msgpack";
import { asFrame, type Codec } from "./codec.js";

export function msgpackCodec(): Codec {
  return {
    subprotocol: "switchboard.v1.msgpack",
    encode: (frame) => encode(frame, { ignoreUndefined: true }),
    decode(data) {
      if (typeof data === "string") {
        // The server accepts either encoding and may answer a text frame with JSON.
        return asFrame(JSON.parse(data));
      }
      // Offsets and counts are u64 on the wire; below 2^53 they decode as numbers.
      return asFrame(decode(new Uint8Array(data), { useBigInt64: false }));
    },
  };
}
