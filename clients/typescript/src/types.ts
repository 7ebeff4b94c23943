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
  | { type: "typing"; id?: number; channel: string; typing?: boolean };

// ---- server → client -----------------------------------------------------------------------

export interface AckFrame {
  type: "ack";
  id: number;
  offset?: number;
  messages?: Message[];
  user?: UserInfo;
  presence?: PresencePage;
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

export type ServerFrame =
  | AckFrame
  | ErrorFrame
  | MessageFrame
  | PresenceEventFrame
  | ReconnectFrame
  | TokenExpiringFrame
  | TypingFrame;

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
