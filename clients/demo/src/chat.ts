// One open room: its messages (the newest history page, older pages on scrolling to the top,
// then live), the send box, and who is online.
//
// Messages are keyed by offset: a message the page already shows is never shown again, whether
// it comes back from a replay after a reconnect, a history page, or both. The SDK resumes the
// subscription from the last offset it delivered, so nothing is missed either.
//
// Edits, deletes and reactions are messages of their own; the SDK's MessageFold folds them into
// the message they are about, whose row is drawn again. They are never lines of their own.

import { clock, describe, h, replace, textOf, withMentions } from "./dom.ts";
import { memberList, type MemberList } from "./members.ts";
import { presenceList, type PresenceList } from "./presence.ts";
import {
  isRoomChange,
  MessageFold,
  replyTo,
  SwitchboardError,
  type Json,
  type Message,
  type RoomChange,
  type Subscription,
  type Switchboard,
  type UserInfo,
} from "./sdk.ts";
import type { Users } from "./users.ts";

const PAGE = 50;
/** The emoji offered for a reaction (any emoji a server accepts shows up as a chip, though). */
export const EMOJI = ["👍", "❤️", "😂", "🎉"] as const;

export class ChatView {
  readonly el: HTMLElement;
  readonly channel: string;
  readonly #list: HTMLElement;
  readonly #top: HTMLElement;
  readonly #older: HTMLButtonElement;
  readonly #beginning: HTMLElement;
  readonly #notice: HTMLElement;
  readonly #input: HTMLInputElement;
  readonly #send: HTMLButtonElement;
  readonly #pending: HTMLElement;
  readonly #presence: PresenceList;
  readonly #typing: HTMLElement;
  readonly #members: MemberList;
  readonly #rows = new Map<number, HTMLElement>();
  /** Offsets shown, ascending. */
  readonly #offsets: number[] = [];
  readonly #fold: MessageFold<Json>;
  /** Every offset of the channel seen (lifecycle messages too): where the history pages go on. */
  #firstSeen: number | undefined;
  #lastSeen = 0;
  /** The message being replied to, and the one being edited (with the draft). */
  #replyTo: number | null = null;
  #editing: { offset: number; draft: string } | null = null;
  readonly #replyBar: HTMLElement;
  #sub: Subscription<Json> | null = null;
  #hasOlder = false;
  #loadingOlder = false;
  #disposed = false;
  #readUpTo = 0;
  #readSent = 0;
  #readTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly sb: Switchboard,
    readonly users: Users,
    readonly room: string,
  ) {
    this.channel = `room:${room}`;
    this.#fold = new MessageFold<Json>(users.me.id);
    this.#replyBar = h("div", { class: "reply-bar", testid: "reply-bar" });
    this.#replyBar.hidden = true;
    this.#older = h("button", { class: "link", testid: "load-older", text: "Load older messages", attrs: { type: "button" } });
    this.#older.addEventListener("click", () => void this.loadOlder());
    this.#beginning = h("span", { class: "muted", testid: "history-start", text: `This is the beginning of #${room}.` });
    this.#top = h("li", { class: "top" }, this.#older, this.#beginning);
    this.#list = h("ol", { class: "messages", testid: "messages", attrs: { "aria-live": "polite" } }, this.#top);
    this.#list.addEventListener("scroll", () => {
      if (this.#list.scrollTop < 40) void this.loadOlder();
    });
    this.#pending = h("ul", { class: "pending" });
    this.#notice = h("p", { class: "error", testid: "chat-error", attrs: { role: "alert" } });
    this.#notice.hidden = true;
    this.#input = h("input", {
      testid: "chat-input",
      attrs: { placeholder: `Message #${room}`, "aria-label": "Message", maxlength: 4000, autocomplete: "off" },
    });
    // Every keystroke may signal: the SDK paces the signals itself.
    this.#input.addEventListener("input", () => {
      if (this.#input.value !== "") this.sb.typing(this.channel);
    });
    this.#typing = h("p", { class: "typing muted", testid: "typing-indicator", attrs: { "aria-live": "polite" } });
    this.#send = h("button", { testid: "chat-send", text: "Send", attrs: { type: "submit" } });
    const form = h(
      "form",
      {
        class: "composer",
        testid: "chat-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            this.#publish();
          },
        },
      },
      this.#input,
      this.#send,
    );
    this.#presence = presenceList(sb, users, this.channel);
    this.#members = memberList(sb, users, room);
    this.el = h(
      "section",
      { class: "chat", testid: "chat", attrs: { "data-room": room, "data-state": "loading" } },
      h(
        "div",
        { class: "chat-main" },
        h("header", { class: "view-header" }, h("h2", { testid: "chat-title", text: room.startsWith("dm.") ? "Direct message" : `#${room}` })),
        this.#list,
        this.#pending,
        this.#typing,
        this.#notice,
        this.#replyBar,
        form,
      ),
      h("div", { class: "chat-side" }, this.#presence.el, this.#members.el),
    );
    this.#older.hidden = true;
    this.#beginning.hidden = true;
  }

  /** Loads the newest page, then goes live from its last offset. */
  async start(): Promise<void> {
    this.el.dataset.state = "loading";
    this.#notice.hidden = true;
    let page: Message[];
    try {
      page = await this.sb.history(this.channel, { limit: PAGE });
    } catch (err) {
      if (this.#disposed) return;
      this.#fail(err, true);
      return;
    }
    if (this.#disposed) return;
    for (const m of page) this.#insert(m);
    this.#setHasOlder(page.length > 0 && page[0]!.offset > 1);
    this.#scrollToBottom();
    const top = page.length > 0 ? page[page.length - 1]!.offset : 0;
    const sub = this.sb.subscribe<Json>(this.channel, {
      since: Math.max(top, this.#lastSeen),
      onMessage: (m) => this.#live(m),
      onJoin: (u) => this.#presence.join(u),
      onLeave: (u) => this.#presence.leave(u),
      onTyping: (who) => this.#showTyping(who),
      onError: (err) => this.#fail(err, false),
    });
    this.#sub = sub;
    // After every (re)subscribe: the replay is in, and who is online may have changed meanwhile.
    sub.on("caught_up", () => {
      this.el.dataset.state = "live";
      void this.#presence.refresh();
      void this.#members.refresh().then(() => {
        this.#roleChanged();
        this.#markRead(this.#lastSeen);
      });
    });
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#readTimer !== null) clearTimeout(this.#readTimer);
    this.#sub?.unsubscribe();
    this.#sub = null;
    this.el.remove();
  }

  focus(): void {
    this.#input.focus();
  }

  /** The page of messages just before the oldest one shown. */
  async loadOlder(): Promise<void> {
    if (!this.#hasOlder || this.#loadingOlder || this.#disposed) return;
    const first = this.#firstSeen;
    if (first === undefined) return;
    this.#loadingOlder = true;
    this.#older.disabled = true;
    this.#older.textContent = "Loading…";
    try {
      const page = await this.sb.history(this.channel, { before: first, limit: PAGE });
      if (this.#disposed) return;
      // Keep what the reader looks at in place while rows are added above it.
      const fromBottom = this.#list.scrollHeight - this.#list.scrollTop;
      for (const m of page) this.#insert(m);
      this.#list.scrollTop = this.#list.scrollHeight - fromBottom;
      // A page may be cut short by size: only an empty page (or offset 1) is the beginning.
      this.#setHasOlder(page.length > 0 && page[0]!.offset > 1);
    } catch (err) {
      this.#notice.textContent = `Could not load older messages: ${describe(err)}`;
      this.#notice.hidden = false;
    } finally {
      this.#loadingOlder = false;
      this.#older.disabled = false;
      this.#older.textContent = "Load older messages";
    }
  }

  #live(m: Message<Json>): void {
    if (isRoomChange(m)) void this.#members.refresh().then(() => this.#roleChanged());
    this.#markRead(m.offset);
    const stick = this.#nearBottom() || m.from === this.users.me.id;
    if (this.#insert(m) && stick) this.#scrollToBottom();
  }

  /** Moves the read marker to `offset` while the page is in view, at most every 2 s. */
  #markRead(offset: number): void {
    this.#readUpTo = Math.max(this.#readUpTo, offset);
    if (this.#readTimer !== null || !this.#members.created) return;
    this.#readTimer = setTimeout(() => {
      this.#readTimer = null;
      if (this.#disposed || document.visibilityState !== "visible" || this.#readUpTo <= this.#readSent) return;
      const upTo = this.#readUpTo;
      this.sb.api.rooms.markRead(this.room, upTo).then(
        () => (this.#readSent = Math.max(this.#readSent, upTo)),
        () => undefined, // the next message tries again
      );
    }, 2_000);
  }

  #showTyping(who: UserInfo[]): void {
    const names = who.map((u) => u.username).sort();
    this.#typing.textContent =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  }

  /**
   * Folds a message in and draws what it changed: its own row, or the row of the message an
   * edit, delete, reaction or reply is about. True when a new row was added.
   */
  #insert(m: Message<Json>): boolean {
    if (m.channel !== this.channel) return false;
    this.#firstSeen = Math.min(this.#firstSeen ?? m.offset, m.offset);
    this.#lastSeen = Math.max(this.#lastSeen, m.offset);
    let added = false;
    for (const offset of this.#fold.add(m)) {
      const now = this.#fold.get(offset);
      if (now === undefined) continue;
      const old = this.#rows.get(offset);
      if (old === undefined) {
        this.#place(now);
        added = true;
        // Replies shown before it (a page of older messages came later) can now quote it.
        for (const child of this.#children.get(offset) ?? []) this.#redraw(child);
      } else if (this.#drawn.get(offset) !== JSON.stringify(now)) {
        this.#redraw(offset);
        // Replies show the start of their parent: draw them again too.
        for (const child of this.#children.get(offset) ?? []) this.#redraw(child);
      }
    }
    return added;
  }

  /** The rendered state of each row, to skip drawing one again unchanged. */
  readonly #drawn = new Map<number, string>();
  /** The shown replies of each message. */
  readonly #children = new Map<number, Set<number>>();

  #render(m: Message<Json>): HTMLElement {
    this.#drawn.set(m.offset, JSON.stringify(m));
    const parent = replyTo(m);
    if (parent !== undefined) {
      let set = this.#children.get(parent);
      if (!set) this.#children.set(parent, (set = new Set()));
      set.add(m.offset);
    }
    return isRoomChange(m) ? this.#systemRow(m, m.data) : this.#messageRow(m);
  }

  /** Adds a row in offset order. */
  #place(m: Message<Json>): void {
    const row = this.#render(m);
    // Binary search for the first shown offset above this one.
    let lo = 0;
    let hi = this.#offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#offsets[mid]! < m.offset) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#offsets[lo];
    this.#list.insertBefore(row, next === undefined ? null : (this.#rows.get(next) ?? null));
    this.#offsets.splice(lo, 0, m.offset);
    this.#rows.set(m.offset, row);
  }

  /** Draws a shown message again (it was edited, reacted to, replied to, deleted...). */
  #redraw(offset: number): void {
    const old = this.#rows.get(offset);
    const now = this.#fold.get(offset);
    if (old === undefined || now === undefined) return;
    const focused = old.contains(document.activeElement);
    const row = this.#render(now);
    old.replaceWith(row);
    this.#rows.set(offset, row);
    if (focused) row.querySelector<HTMLInputElement>("[data-testid=edit-input]")?.focus();
  }

  /** A membership or moderation change, as a line of its own. */
  #systemRow(m: Message<Json>, change: RoomChange): HTMLElement {
    return h(
      "li",
      {
        class: "msg system",
        testid: "system-message",
        attrs: { "data-offset": m.offset, "data-channel": m.channel, "data-kind": change.kind },
      },
      h("span", { class: "muted", text: describeChange(change) }),
    );
  }

  #messageRow(m: Message<Json>): HTMLElement {
    const mine = m.from === this.users.me.id;
    const gone = m.deleted === true || m.hidden === true;
    const parent = replyTo(m);
    const editing = this.#editing?.offset === m.offset && !gone ? this.#editing : null;
    return h(
      "li",
      {
        class: ["msg", mine ? "mine" : "", gone ? "gone" : ""].filter(Boolean).join(" "),
        testid: "message",
        attrs: {
          "data-offset": m.offset,
          "data-channel": m.channel,
          "data-from": m.from,
          "data-deleted": m.deleted === true,
          "data-hidden": m.hidden === true,
          "data-edited": m.edited_at !== undefined,
        },
      },
      h(
        "div",
        { class: "meta" },
        this.users.link(m.from),
        h("time", { class: "muted", text: clock(m.ts), attrs: { datetime: m.ts, title: m.ts } }),
        m.edited_at !== undefined && !gone
          ? h("span", { class: "muted edited", testid: "message-edited", text: "(edited)", attrs: { title: m.edited_at } })
          : null,
      ),
      parent !== undefined ? this.#replyContext(parent) : null,
      m.hidden
        ? h("div", { class: "text tombstone", testid: "message-text", text: "hidden (blocked user)" })
        : m.deleted
          ? h("div", { class: "text tombstone", testid: "message-text", text: "message deleted" })
          : editing
            ? this.#editForm(m, editing)
            : h("div", { class: "text", testid: "message-text" }, withMentions(textOf(m.data), this.users.me.username)),
      gone ? null : this.#reactionChips(m),
      h(
        "div",
        { class: "msg-foot" },
        m.replies
          ? h("span", { class: "muted", testid: "message-replies", text: m.replies === 1 ? "1 reply" : `${m.replies} replies` })
          : null,
        gone ? null : this.#actions(m, mine),
      ),
    );
  }

  /** "↪ alice: the start of what she wrote" above a reply. */
  #replyContext(parent: Message<Json> | number): HTMLElement {
    const p = typeof parent === "number" ? this.#fold.get(parent) : parent;
    const offset = typeof parent === "number" ? parent : parent.offset;
    return h(
      "div",
      { class: "reply-to muted", testid: "message-reply-to", attrs: { "data-reply-to": offset } },
      "↪ ",
      p ? this.users.link(p.from) : "an earlier message",
      p ? `: ${excerpt(p)}` : "",
    );
  }

  #reactionChips(m: Message<Json>): HTMLElement | null {
    const reactions = m.reactions ?? [];
    if (reactions.length === 0) return null;
    return h(
      "div",
      { class: "reactions", testid: "reactions" },
      ...reactions.map((r) =>
        h("button", {
          class: r.me ? "chip me" : "chip",
          testid: "reaction",
          text: `${r.emoji} ${r.count}`,
          attrs: {
            type: "button",
            "data-emoji": r.emoji,
            "data-count": r.count,
            "data-me": String(r.me),
            title: r.me ? "Take your reaction back" : "React with this too",
            "aria-pressed": String(r.me),
          },
          on: { click: () => this.#toggleReaction(m.offset, r.emoji) },
        }),
      ),
    );
  }

  #actions(m: Message<Json>, mine: boolean): HTMLElement {
    const button = (testid: string, text: string, click: () => void, extra: Record<string, string> = {}, cls = "link") =>
      h("button", { class: cls, testid, text, attrs: { type: "button", ...extra }, on: { click } });
    return h(
      "span",
      { class: "actions" },
      button("message-reply", "reply", () => this.#setReply(m.offset)),
      ...EMOJI.map((emoji) =>
        button("react-add", emoji, () => this.#toggleReaction(m.offset, emoji), { "data-emoji": emoji, title: `React with ${emoji}` }, "link emoji"),
      ),
      mine ? button("message-edit", "edit", () => this.#startEdit(m)) : null,
      // Others' messages: for the room's owner and admins only (the chat's `moderator` class).
      button("message-delete", "delete", () => this.#delete(m.offset), {}, mine ? "link" : "link moderate"),
    );
  }

  #editForm(m: Message<Json>, editing: { offset: number; draft: string }): HTMLElement {
    const input = h("input", {
      testid: "edit-input",
      attrs: { "aria-label": "Edit message", maxlength: 4000, autocomplete: "off" },
    });
    input.value = editing.draft;
    input.addEventListener("input", () => (editing.draft = input.value));
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.#cancelEdit();
    });
    return h(
      "form",
      {
        class: "edit",
        testid: "edit-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            this.#saveEdit(m);
          },
        },
      },
      input,
      h("button", { testid: "edit-save", text: "Save", attrs: { type: "submit" } }),
      h("button", { class: "secondary", testid: "edit-cancel", text: "Cancel", attrs: { type: "button" }, on: { click: () => this.#cancelEdit() } }),
    );
  }

  #startEdit(m: Message<Json>): void {
    const previous = this.#editing;
    this.#editing = { offset: m.offset, draft: textOf(m.data) };
    if (previous) this.#redraw(previous.offset);
    this.#redraw(m.offset);
    this.#rows.get(m.offset)?.querySelector<HTMLInputElement>("[data-testid=edit-input]")?.focus();
  }

  #cancelEdit(): void {
    const editing = this.#editing;
    this.#editing = null;
    if (editing) this.#redraw(editing.offset);
    this.#input.focus();
  }

  #saveEdit(m: Message<Json>): void {
    const editing = this.#editing;
    if (!editing || editing.offset !== m.offset) return;
    const text = editing.draft.trim();
    if (text === "" || text === textOf(this.#fold.get(m.offset)?.data)) return this.#cancelEdit();
    // The new version replaces the whole payload: keep what else it had (a reply's `reply_to`).
    const now = this.#fold.get(m.offset)?.data;
    const data: Json = now && typeof now === "object" && !Array.isArray(now) ? { ...now, text } : { text };
    this.#notice.hidden = true;
    this.sb.api.rooms.editMessage(this.room, m.offset, data).then(
      () => {
        // The edit itself arrives by the subscription and redraws the row with the new text.
        if (this.#editing === editing) this.#cancelEdit();
      },
      (err: unknown) => this.#error("Not edited", err),
    );
  }

  #delete(offset: number): void {
    this.#notice.hidden = true;
    this.sb.api.rooms.deleteMessage(this.room, offset).then(
      () => undefined,
      (err: unknown) => this.#error("Not deleted", err),
    );
  }

  #toggleReaction(offset: number, emoji: string): void {
    const on = this.#fold.get(offset)?.reactions?.some((r) => r.emoji === emoji && r.me) ?? false;
    this.#notice.hidden = true;
    (on ? this.sb.api.rooms.unreact(this.room, offset, emoji) : this.sb.api.rooms.react(this.room, offset, emoji)).then(
      () => undefined,
      (err: unknown) => this.#error(on ? "Reaction not removed" : "Reaction not added", err),
    );
  }

  #setReply(offset: number | null): void {
    this.#replyTo = offset;
    const parent = offset === null ? undefined : this.#fold.get(offset);
    if (offset === null || parent === undefined) {
      this.#replyTo = null;
      this.#replyBar.hidden = true;
      replace(this.#replyBar);
      return;
    }
    replace(
      this.#replyBar,
      h("span", { testid: "reply-bar-text" }, "Replying to ", this.users.link(parent.from), `: ${excerpt(parent)}`),
      h("button", { class: "link", testid: "reply-cancel", text: "cancel", attrs: { type: "button" }, on: { click: () => this.#setReply(null) } }),
    );
    this.#replyBar.dataset.replyTo = String(offset);
    this.#replyBar.hidden = false;
    this.#input.focus();
  }

  /** Owners and admins may delete anyone's message; the page shows them the buttons. */
  #roleChanged(): void {
    const role = this.#members.role;
    this.el.classList.toggle("moderator", role === "owner" || role === "admin");
    if (this.room.startsWith("dm.")) {
      const other = this.#members.members.find((m) => m.id !== this.users.me.id);
      if (other) this.el.querySelector("[data-testid=chat-title]")!.textContent = `Direct message with ${other.username}`;
    }
  }

  #error(what: string, err: unknown): void {
    this.#notice.textContent = `${what}: ${describe(err)}`;
    this.#notice.hidden = false;
  }

  #publish(): void {
    const text = this.#input.value.trim();
    if (text === "") return;
    this.#input.value = "";
    this.sb.typing(this.channel, false);
    this.#notice.hidden = true;
    const parent = this.#replyTo;
    this.#setReply(null);
    // Shown faded until the server has stored it; the stored message arrives by the subscription.
    const pending = h("li", { class: "msg pending", testid: "message-pending", text });
    this.#pending.append(pending);
    this.#scrollToBottom();
    this.sb.publish(this.channel, parent === null ? { text } : { text, reply_to: parent }).then(
      () => pending.remove(),
      (err: unknown) => {
        pending.remove();
        if (this.#input.value === "") this.#input.value = text;
        if (parent !== null && this.#replyTo === null) this.#setReply(parent);
        this.#notice.textContent = `Not sent: ${describe(err)}`;
        this.#notice.hidden = false;
      },
    );
  }

  #fail(err: unknown, retry: boolean): void {
    this.el.dataset.state = "error";
    const forbidden = err instanceof SwitchboardError && err.code === "forbidden";
    replace(
      this.#notice,
      forbidden ? `You cannot read #${this.room}: ${describe(err)}` : describe(err),
      retry && !forbidden
        ? h("button", { class: "link", text: " Retry", attrs: { type: "button" }, on: { click: () => void this.start() } })
        : null,
    );
    this.#notice.hidden = false;
    if (forbidden) this.#input.disabled = this.#send.disabled = true;
  }

  #setHasOlder(more: boolean): void {
    this.#hasOlder = more;
    this.#older.hidden = !more;
    this.#beginning.hidden = more;
  }

  #nearBottom(): boolean {
    const l = this.#list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  #scrollToBottom(): void {
    this.#list.scrollTop = this.#list.scrollHeight;
  }
}

/** The start of a message's text, for "replying to". */
function excerpt(m: Message<Json>): string {
  if (m.deleted) return "message deleted";
  if (m.hidden) return "hidden (blocked user)";
  const text = textOf(m.data);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** A system message in words: "alice added bob", "bob left". */
export function describeChange(c: RoomChange): string {
  const by = c.by.username;
  const user = c.user?.username ?? "someone";
  switch (c.kind) {
    case "member_added":
      return c.user?.id === c.by.id ? `${user} joined` : `${by} added ${user}`;
    case "member_removed":
      return `${by} removed ${user}`;
    case "member_left":
      return `${user} left`;
    case "role_changed":
      return `${by} made ${user} ${c.role === "admin" ? "an admin" : "a member"}`;
    case "ownership_transferred":
      return `${by} handed the room to ${user}`;
    case "banned":
      return `${by} banned ${user}`;
    case "unbanned":
      return `${by} lifted the ban on ${user}`;
    case "timed_out":
      return `${by} timed ${user} out until ${new Date(c.until ?? 0).toLocaleTimeString()}`;
    case "timeout_lifted":
      return `${by} lifted ${user}'s timeout`;
    case "renamed":
      return c.title ? `${by} renamed the room to "${c.title}"` : `${by} cleared the room's title`;
    case "archived":
      return `${by} archived the room (read-only)`;
    case "unarchived":
      return `${by} reopened the room`;
  }
}
