/**
 * `@switchboard/client`: the client SDK of Switchboard, for browsers and Node >= 20.
 *
 * ```ts
 * import { Switchboard } from "@switchboard/client";
 * const sb = new Switchboard({ url: "http://127.0.0.1:8080" });
 * await sb.login("alice", "correct horse");
 * const room = sb.subscribe("room:lobby", { onMessage: (m) => console.log(m.offset, m.data) });
 * const offset = await sb.publish("room:lobby", { text: "hello" });
 * ```
 *
 * @packageDocumentation
 */

export { Switchboard, type SwitchboardOptions, type ClientEvents, type PublishOptions } from "./client.js";
export { Subscription, type SubscribeOptions, type SubscriptionEvents, type SubscriptionState, type SubscriptionHost, type AnySubscription, type ReadReceipt } from "./subscription.js";
export { type Connection, type ConnectionState, type StateChange, type ConnectionOptions, type ConnectionEvents, type Request, type RequestOptions, type WebSocketCtor } from "./connection.js";
export { type Auth, type AuthEvents } from "./auth.js";
export { type Http, type Credentials, type Query, type RequestOptions as HttpRequestOptions } from "./http.js";
export { type Emitter, type Listener } from "./emitter.js";
export { SwitchboardError, type ErrorCode, type ServerErrorCode, type ClientErrorCode } from "./errors.js";
export {
  MemoryTokenStore,
  StorageTokenStore,
  MemoryOffsetStore,
  StorageOffsetStore,
  type TokenStore,
  type OffsetStore,
  type Tokens,
  type StorageLike,
} from "./stores.js";
export { jsonCodec, type Codec } from "./codec.js";
export { Api, type PageQuery } from "./api.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { channel } from "./channels.js";
export type * from "./types.js";
export { isRoomChange, lifecycleOf, isEdit, isDelete, isReaction, replyTo } from "./types.js";
export { MessageFold, foldMessages } from "./fold.js";
