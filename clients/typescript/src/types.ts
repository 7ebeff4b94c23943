// The wire types of Switchboard protocol v1 (docs/PROTOCOL.md is normative; the Rust crate
// `switchboard-protocol` implements the server side). Field names are exactly the wire names, so
// a frame decoded from JSON or MessagePack is one of these types without any mapping.

/** Any JSON value: what `data` may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `room:<name>`, `user:<user id>` or `feed:<user id>`. */
export type Channel = `room:${string}` | `user:${string}` | `feed:${string}`;

export interface UserInfo {
  id: string;
  username: string;
}

/** A stored message, as pushed live (`message` frame) and as read from history. */
export interface Message<D = Json> {
  channel: string;
  /** Per channel, from 1, +1 each: no gaps, no reuse. */
  offset: number;
  /** UUIDv7 string. */
  id: string;
  /** The publisher's user id (`system` for a server API key). */
  from: string;
  /** Storage time, RFC 3339 UTC. */
  ts: string;
  data: D;
  // What became of the message since it was published, as history pages and `since` replay
  // show it (PROTOCOL.md, "Message lifecycle"): each field only when set. A live message is
  // always as published; `MessageFold` applies the later edits, deletes and reactions to it.
  /** RFC 3339 time of the latest edit; `data` is that version. */
  edited_at?: string;
  /** A tombstone: the message was deleted, `data` is `null`. */
  deleted?: boolean;
  /** How many messages reply to this one (`data.reply_to`). */
  replies?: number;
  /** Most used first (ties in emoji order); `me`: the reader is one of them. History pages only. */
  reactions?: ReactionCount[];
  /** Its sender is blocked by the reader: `data` is `null`. */
  hidden?: boolean;
}

/** One emoji's reactions on a room message. */
export interface ReactionCount {
  emoji: string;
  count: number;
  /** The reader is one of them. */
  me: boolean;
}

export interface PresencePage {
  count: number;
  users: UserInfo[];
  cursor?: string;
}

// ---- client → server -----------------------------------------------------------------------

export type ClientFrame =
  | { type: "auth"; id: number; token: string }
  | { type: "subscribe"; id: number; channel: string; since?: number }
  | { type: "unsubscribe"; id: number; channel: string }
  | { type: "publish"; id: number; channel: string; data: Json; idempotency_key?: string }
  | { type: "history"; id: number; channel: string; before?: number; limit?: number }
  | { type: "presence"; id: number; channel: string; cursor?: string; limit?: number }
  | { type: "ping"; id: number }
  | { type: "read"; id: number; channel: string; offset: number }
  | { type: "typing"; id?: number; channel: string; typing?: boolean };

// ---- server → client -----------------------------------------------------------------------

export interface AckFrame {
  type: "ack";
  id: number;
  offset?: number;
  messages?: Message[];
  user?: UserInfo;
  presence?: PresencePage;
  /** `read`: what is left unread after the marker. */
  unread?: number;
}

export interface ErrorFrame {
  type: "error";
  id?: number;
  code: string;
  message: string;
  /** Present when the error ends a subscription to this channel. */
  channel?: string;
}

export interface MessageFrame extends Message {
  type: "message";
}

export interface PresenceEventFrame {
  type: "join" | "leave";
  channel: string;
  user: UserInfo;
}

export interface ReconnectFrame {
  type: "reconnect";
  after_ms: number;
}

export interface TokenExpiringFrame {
  type: "token_expiring";
  expires_in: number;
}

/** Someone is typing in a room (or stopped). Never stored, no offset. */
export interface TypingFrame {
  type: "typing";
  channel: string;
  user: UserInfo;
  typing: boolean;
  /** Show the indicator this long unless renewed. */
  ttl_ms: number;
}

/**
 * A read receipt: `user` has read the room `channel` up to `offset` (their read marker moved).
 * Never stored, no offset of its own, not replayed (`api.rooms.readState` has the state).
 */
export interface ReadFrame {
  type: "read";
  channel: string;
  user: UserInfo;
  offset: number;
}

export type ServerFrame =
  | AckFrame
  | ErrorFrame
  | MessageFrame
  | PresenceEventFrame
  | ReconnectFrame
  | TokenExpiringFrame
  | TypingFrame
  | ReadFrame;

// ---- feeds and notifications ---------------------------------------------------------------

export interface Post {
  id: string;
  author: UserInfo;
  data: Json;
  /** Unix milliseconds. */
  ts: number;
  reply_to: string | null;
}

export interface PostDetail extends Post {
  replies: number;
  reactions: { emoji: string; count: number }[];
}

/** `data` of a `feed:<user id>` message. */
export interface FeedData {
  kind: "post";
  post: Post;
}

interface NotificationBase {
  /** The notification id (also the message id). */
  id: string;
  from: UserInfo;
  /** Unix milliseconds. */
  created_at: number;
}

export interface FollowNotification extends NotificationBase {
  kind: "follow";
}

export interface MentionNotification extends NotificationBase {
  kind: "mention";
  room: string;
  channel: string;
  message: { offset: number; id: string; excerpt: string; data?: Json };
}

export interface ReplyNotification extends NotificationBase {
  kind: "reply";
  post_id: string;
  reply: Post;
}

export interface ReactionNotification extends NotificationBase {
  kind: "reaction";
  post_id: string;
  emoji: string;
}

/** The user's membership of a room changed (they were added, removed, promoted, banned...). */
export interface RoomNotification extends NotificationBase {
  kind: "room";
  room: string;
  channel: string;
  change: "member_added" | "member_removed" | "role_changed" | "owner" | "banned" | "timed_out";
  role?: RoomRole;
  /** For `timed_out`: Unix ms. */
  until?: number;
}

export type Notification =
  | FollowNotification
  | MentionNotification
  | ReplyNotification
  | ReactionNotification
  | RoomNotification;

/** Every notification `kind`. */
export type NotificationKind = Notification["kind"];

/** Notifications were marked read (on any device). Not a notification: no `id`, not counted. */
export interface ReadEvent {
  kind: "read";
  ids?: string[];
  all?: boolean;
  upto?: number;
  unread_count: number;
}

/** The user's read marker in a room moved (on any device). Not a notification. */
export interface RoomReadEvent {
  kind: "room_read";
  room: string;
  channel: string;
  offset: number;
  unread: number;
}

/** `data` of a `user:<user id>` message. */
export type UserEvent = Notification | ReadEvent | RoomReadEvent;

/** A notification as listed by `GET /api/v1/notifications`. */
export type ListedNotification = Notification & { offset: number; read: boolean };

// ---- HTTP bodies ---------------------------------------------------------------------------

export interface TokenBody {
  access_token: string;
  refresh_token: string;
  token_type: "Bearer";
  /** Seconds. */
  expires_in: number;
  user: UserInfo;
}

export type RoomRole = "owner" | "admin" | "member";

export interface Room {
  name: string;
  channel: string;
  private: boolean;
  members: UserInfo[];
  created: true;
  title: string | null;
  archived: boolean;
  role: RoomRole;
}

export interface RoomListing {
  name: string;
  channel: string;
  private: boolean;
  created_by: string | null;
  /** False for a name never created: an open public room without members or roles. */
  created: boolean;
  title: string | null;
  archived: boolean;
  /** Messages of others after the caller's read marker (member rooms only; 1000 means 1000 or more). */
  unread?: number;
}

/** One room (`GET /api/v1/rooms/{name}`); `role` is the caller's, absent when not a member. */
export interface RoomDetail extends RoomListing {
  role?: RoomRole;
}

export interface RoomMember extends UserInfo {
  role: RoomRole;
}

export interface AuditEntry {
  id: number;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
  /** Unix ms. */
  at: number;
}

/** `data` of a room's system message (`from` is `"system"`): a membership or moderation change. */
export interface RoomChange {
  kind:
    | "member_added"
    | "member_removed"
    | "member_left"
    | "role_changed"
    | "ownership_transferred"
    | "banned"
    | "unbanned"
    | "timed_out"
    | "timeout_lifted"
    | "renamed"
    | "archived"
    | "unarchived";
  by: UserInfo;
  user?: UserInfo;
  role?: RoomRole;
  until?: number;
  title?: string | null;
}

/** Whether a room message is a system message about a membership or moderation change. */
export function isRoomChange(message: { from: string; data: unknown }): message is { from: "system"; data: RoomChange } {
  const data = message.data as { kind?: unknown; by?: unknown } | null;
  return message.from === "system" && typeof data?.kind === "string" && typeof data.by === "object";
}

export interface Profile extends UserInfo {
  followers: number;
  following: number;
}

export interface FollowEntry extends UserInfo {
  followed_at: number;
}

export interface FeedItem {
  offset: number;
  post: Post;
}

export type MuteTarget = { room: string } | { user: string };

export type Mute = MuteTarget & { created_at: number };

export interface Page<T> {
  items: T[];
  /** Pass as `before` (or `after`) for the next page; `null` on the last page. */
  next: string | number | null;
}

// ---- message lifecycle (room channels) -----------------------------------------------------

/** `data` of an edit: `data` is the new version of the message at `target` (absent once deleted). */
export interface EditData {
  kind: "edit";
  target: number;
  data?: Json;
}

/** `data` of a delete: the message at `target` is gone. */
export interface DeleteData {
  kind: "delete";
  target: number;
}

/** `data` of a reaction change: `count` is how many users have `emoji` on `target` after it. */
export interface ReactionData {
  kind: "reaction";
  target: number;
  emoji: string;
  op: "add" | "remove";
  count: number;
}

/** An edit, a delete or a reaction: a room message about an earlier one (its `target`). */
export type LifecycleData = EditData | DeleteData | ReactionData;

/** What `lifecycleOf` looks at: a message, live or from history. */
export interface LifecycleCandidate {
  channel?: string;
  offset?: number;
  edited_at?: string;
  data: unknown;
}

/**
 * The edit, delete or reaction a room message is, or null for any other message (a chat
 * message, a system message, a hidden one). The server refuses these kinds from users'
 * publishes, so they can be trusted. Messages of other channels are never lifecycle messages
 * (a `user:` notification has a `reaction` kind of its own).
 */
export function lifecycleOf(message: LifecycleCandidate): LifecycleData | null {
  if (message.channel !== undefined && !message.channel.startsWith("room:")) return null;
  // An edited message is a chat message whatever its new content says (edits are not checked
  // for the reserved kinds), and a lifecycle message is always about an earlier one.
  if (message.edited_at !== undefined) return null;
  const d = message.data as { kind?: unknown; target?: unknown; emoji?: unknown; op?: unknown; count?: unknown } | null;
  if (d === null || typeof d !== "object" || typeof d.target !== "number") return null;
  if (message.offset !== undefined && d.target >= message.offset) return null;
  switch (d.kind) {
    case "edit":
    case "delete":
      return d as EditData | DeleteData;
    case "reaction":
      return typeof d.emoji === "string" && (d.op === "add" || d.op === "remove") && typeof d.count === "number"
        ? (d as ReactionData)
        : null;
    default:
      return null;
  }
}

export function isEdit<M extends LifecycleCandidate>(message: M): message is M & { data: EditData } {
  return lifecycleOf(message)?.kind === "edit";
}

export function isDelete<M extends LifecycleCandidate>(message: M): message is M & { data: DeleteData } {
  return lifecycleOf(message)?.kind === "delete";
}

export function isReaction<M extends LifecycleCandidate>(message: M): message is M & { data: ReactionData } {
  return lifecycleOf(message)?.kind === "reaction";
}

/** The offset a chat message replies to (`data.reply_to`), if it is a reply. */
export function replyTo(message: { data: unknown }): number | undefined {
  const d = message.data as { reply_to?: unknown } | null;
  return d !== null && typeof d === "object" && typeof d.reply_to === "number" && lifecycleOf(message) === null
    ? d.reply_to
    : undefined;
}
