// The REST API (docs/PROTOCOL.md#http-api), typed with the same definitions as the frames.
// Single objects come unwrapped (`rooms.create` gives the room); pages come as the server's body
// with its cursor (`next_before` / `next_after`, null on the last page).

import type { Http } from "./http.js";
import type {
  FeedItem,
  FollowEntry,
  Json,
  ListedNotification,
  Message,
  Mute,
  MuteTarget,
  Post,
  PostDetail,
  Profile,
  AuditEntry,
  Room,
  RoomDetail,
  RoomListing,
  RoomMember,
  RoomRole,
  UserInfo,
} from "./types.js";

export interface PageQuery<C = number> {
  before?: C;
  limit?: number;
}

const seg = encodeURIComponent;

export class Api {
  constructor(readonly http: Http) {}

  readonly rooms = {
    create: async (room: { name: string; private?: boolean; members?: string[] }): Promise<Room> =>
      (await this.http.request<{ room: Room }>("POST", "/api/v1/rooms", { body: room })).room,
    list: (q: { after?: string; limit?: number } = {}) =>
      this.http.request<{ rooms: RoomListing[]; next_after: string | null; unread_total: number }>("GET", "/api/v1/rooms", {
        query: q,
      }),
    /** Moves the caller's read marker forward; the answer has the marker and what is left unread. */
    markRead: async (name: string, offset: number): Promise<{ room: string; channel: string; offset: number; unread: number }> =>
      (
        await this.http.request<{ read: { room: string; channel: string; offset: number; unread: number } }>(
          "POST",
          `/api/v1/rooms/${seg(name)}/read`,
          { body: { offset } },
        )
      ).read,
    /** Read receipts: how far each member has read (rooms up to the server's member threshold). */
    readState: (name: string, q: { after?: string; limit?: number } = {}) =>
      this.http.request<{ members: { id: string; username: string; offset: number }[]; next_after: string | null }>(
        "GET",
        `/api/v1/rooms/${seg(name)}/read_state`,
        { query: q },
      ),
    /**
     * Edits the caller's own message at `offset` (`data`: its new version); resolves with the
     * edit's own offset (an `edit` message in the room's channel).
     */
    editMessage: async (name: string, offset: number, data: Json): Promise<number> =>
      (
        await this.http.request<{ offset: number }>("PATCH", `/api/v1/rooms/${seg(name)}/messages/${offset}`, {
          body: { data },
        })
      ).offset,
    /** Deletes the message at `offset` (its author, or the room's owner or an admin); resolves with the delete's offset. */
    deleteMessage: async (name: string, offset: number): Promise<number> =>
      (await this.http.request<{ offset: number }>("DELETE", `/api/v1/rooms/${seg(name)}/messages/${offset}`)).offset,
    /**
     * Adds the caller's `emoji` to the message at `offset`: the `reaction` message's offset, or
     * null when the caller had that reaction already (nothing stored).
     */
    react: async (name: string, offset: number, emoji: string): Promise<number | null> =>
      (
        await this.http.request<{ offset?: number }>("POST", `/api/v1/rooms/${seg(name)}/messages/${offset}/reactions`, {
          body: { emoji },
        })
      ).offset ?? null,
    /** Takes the caller's `emoji` off the message at `offset` (`not_found` when it was not on); resolves with the change's offset. */
    unreact: async (name: string, offset: number, emoji: string): Promise<number> =>
      (
        await this.http.request<{ offset: number }>(
          "DELETE",
          `/api/v1/rooms/${seg(name)}/messages/${offset}/reactions/${seg(emoji)}`,
        )
      ).offset,
    get: async (name: string): Promise<RoomDetail> =>
      (await this.http.request<{ room: RoomDetail }>("GET", `/api/v1/rooms/${seg(name)}`)).room,
    /** Owner only: `title` (null clears it) and `archived` (read-only). */
    update: async (name: string, change: { title?: string | null; archived?: boolean }): Promise<RoomDetail> =>
      (await this.http.request<{ room: RoomDetail }>("PATCH", `/api/v1/rooms/${seg(name)}`, { body: change })).room,
    /** Owner only: the messages are deleted, the name stays taken. */
    delete: (name: string) => this.http.request<void>("DELETE", `/api/v1/rooms/${seg(name)}`),
    members: (name: string, q: { after?: string; limit?: number } = {}) =>
      this.http.request<{ members: RoomMember[]; next_after: string | null }>(
        "GET",
        `/api/v1/rooms/${seg(name)}/members`,
        { query: q },
      ),
    /** Adds a member (owners and admins; in a public room, anyone adds themselves). */
    addMember: async (name: string, who: { user: string } | { username: string }): Promise<RoomMember> =>
      (await this.http.request<{ member: RoomMember }>("POST", `/api/v1/rooms/${seg(name)}/members`, { body: who }))
        .member,
    removeMember: (name: string, userId: string) =>
      this.http.request<void>("DELETE", `/api/v1/rooms/${seg(name)}/members/${seg(userId)}`),
    leave: (name: string) => this.http.request<void>("POST", `/api/v1/rooms/${seg(name)}/leave`),
    setRole: async (name: string, userId: string, role: Exclude<RoomRole, "owner">): Promise<RoomMember> =>
      (
        await this.http.request<{ member: RoomMember }>("PATCH", `/api/v1/rooms/${seg(name)}/members/${seg(userId)}`, {
          body: { role },
        })
      ).member,
    transferOwnership: async (name: string, userId: string): Promise<RoomMember> =>
      (await this.http.request<{ member: RoomMember }>("POST", `/api/v1/rooms/${seg(name)}/owner`, { body: { user: userId } }))
        .member,
    ban: (name: string, userId: string) =>
      this.http.request<void>("POST", `/api/v1/rooms/${seg(name)}/bans`, { body: { user: userId } }),
    unban: (name: string, userId: string) =>
      this.http.request<void>("DELETE", `/api/v1/rooms/${seg(name)}/bans/${seg(userId)}`),
    /** The user may read but not publish for `seconds`. */
    timeout: async (name: string, userId: string, seconds: number): Promise<{ user: string; until: number }> =>
      (
        await this.http.request<{ timeout: { user: string; until: number } }>("POST", `/api/v1/rooms/${seg(name)}/timeouts`, {
          body: { user: userId, seconds },
        })
      ).timeout,
    liftTimeout: (name: string, userId: string) =>
      this.http.request<void>("DELETE", `/api/v1/rooms/${seg(name)}/timeouts/${seg(userId)}`),
    audit: (name: string, q: PageQuery = {}) =>
      this.http.request<{ entries: AuditEntry[]; next_before: number | null }>("GET", `/api/v1/rooms/${seg(name)}/audit`, {
        query: { ...q },
      }),
  };

  /** The one private conversation with another user (created on first use, from either side). */
  readonly dms = {
    open: async (userId: string): Promise<{ room: string; channel: string; user: UserInfo }> =>
      (
        await this.http.request<{ dm: { room: string; channel: string; user: UserInfo } }>("POST", "/api/v1/dms", {
          body: { user: userId },
        })
      ).dm,
  };

  /** Blocked users: no direct messages either way, no notifications from them. */
  readonly blocks = {
    add: (userId: string) => this.http.request<void>("POST", "/api/v1/blocks", { body: { user: userId } }),
    remove: (userId: string) => this.http.request<void>("DELETE", `/api/v1/blocks/${seg(userId)}`),
    list: (q: { after?: string; limit?: number } = {}) =>
      this.http.request<{ users: UserInfo[]; next_after: string | null }>("GET", "/api/v1/blocks", { query: q }),
  };

  readonly channels = {
    history: async (channel: string, q: PageQuery = {}): Promise<Message[]> =>
      (await this.http.request<{ messages: Message[] }>("GET", `/api/v1/channels/${seg(channel)}/messages`, { query: { ...q } }))
        .messages,
    publish: async (channel: string, data: Json, opts: { idempotencyKey?: string } = {}): Promise<number> =>
      (
        await this.http.request<{ offset: number }>("POST", `/api/v1/channels/${seg(channel)}/messages`, {
          body: { data },
          headers: opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {},
        })
      ).offset,
  };

  readonly users = {
    byUsername: async (username: string): Promise<UserInfo> =>
      (await this.http.request<{ user: UserInfo }>("GET", "/api/v1/users", { query: { username } })).user,
    get: async (id: string): Promise<Profile> =>
      (await this.http.request<{ user: Profile }>("GET", `/api/v1/users/${seg(id)}`)).user,
    /** True when the follow is new (the user gets a `follow` notification). */
    follow: async (id: string): Promise<boolean> =>
      (await this.http.exchange<{ following: UserInfo }>("POST", `/api/v1/users/${seg(id)}/follow`)).status === 201,
    unfollow: (id: string) => this.http.request<void>("DELETE", `/api/v1/users/${seg(id)}/follow`),
    followers: (id: string, q: PageQuery = {}) =>
      this.http.request<{ users: FollowEntry[]; next_before: number | null }>("GET", `/api/v1/users/${seg(id)}/followers`, {
        query: { ...q },
      }),
    following: (id: string, q: PageQuery = {}) =>
      this.http.request<{ users: FollowEntry[]; next_before: number | null }>("GET", `/api/v1/users/${seg(id)}/following`, {
        query: { ...q },
      }),
    posts: (id: string, q: PageQuery<string> = {}) =>
      this.http.request<{ posts: Post[]; next_before: string | null }>("GET", `/api/v1/users/${seg(id)}/posts`, {
        query: { ...q },
      }),
  };

  readonly posts = {
    create: async (data: Json): Promise<Post> =>
      (await this.http.request<{ post: Post }>("POST", "/api/v1/posts", { body: { data } })).post,
    get: async (id: string): Promise<PostDetail> =>
      (await this.http.request<{ post: PostDetail }>("GET", `/api/v1/posts/${seg(id)}`)).post,
    reply: async (id: string, data: Json): Promise<Post> =>
      (await this.http.request<{ post: Post }>("POST", `/api/v1/posts/${seg(id)}/replies`, { body: { data } })).post,
    replies: (id: string, q: { after?: string; limit?: number } = {}) =>
      this.http.request<{ replies: Post[]; next_after: string | null }>("GET", `/api/v1/posts/${seg(id)}/replies`, {
        query: { ...q },
      }),
    /** True when the reaction is new. */
    react: async (id: string, emoji: string): Promise<boolean> =>
      (await this.http.exchange<unknown>("POST", `/api/v1/posts/${seg(id)}/reactions`, { body: { emoji } })).status === 201,
    unreact: (id: string, emoji: string) =>
      this.http.request<void>("DELETE", `/api/v1/posts/${seg(id)}/reactions`, { body: { emoji } }),
  };

  /** The caller's home feed, newest first. */
  feed = (q: PageQuery = {}) =>
    this.http.request<{ items: FeedItem[]; next_before: number | null }>("GET", "/api/v1/feed", { query: { ...q } });

  readonly notifications = {
    list: (q: PageQuery = {}) =>
      this.http.request<{ notifications: ListedNotification[]; next_before: number | null }>("GET", "/api/v1/notifications", {
        query: { ...q },
      }),
    unreadCount: async (): Promise<number> =>
      (await this.http.request<{ unread_count: number }>("GET", "/api/v1/notifications/unread_count")).unread_count,
    markRead: (which: { ids: string[] } | { all: true; upto?: number }) =>
      this.http.request<{ marked: number; unread_count: number }>("POST", "/api/v1/notifications/read", { body: which }),
  };

  readonly mutes = {
    /** True when the mute is new. */
    add: async (target: MuteTarget): Promise<boolean> =>
      (await this.http.exchange<unknown>("POST", "/api/v1/mutes", { body: target })).status === 201,
    remove: (target: MuteTarget) => this.http.request<void>("DELETE", "/api/v1/mutes", { body: target }),
    list: async (): Promise<Mute[]> => (await this.http.request<{ mutes: Mute[] }>("GET", "/api/v1/mutes")).mutes,
  };
}
