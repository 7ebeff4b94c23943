// One open room: its messages (the newest history page, older pages on scrolling to the top,
// then live), the send box, and who is online.
//
// Messages are keyed by offset: a message the page already shows is never shown again, whether
// it comes back from a replay after a reconnect, a history page, or both. The SDK resumes the
// subscription from the last offset it delivered, so nothing is missed either.

import { clock, describe, h, replace, textOf, withMentions } from "./dom.ts";
import { memberList, type MemberList } from "./members.ts";
import { presenceList, type PresenceList } from "./presence.ts";
import {
  isRoomChange,
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
        h("header", { class: "view-header" }, h("h2", { testid: "chat-title", text: `#${room}` })),
        this.#list,
        this.#pending,
        this.#typing,
        this.#notice,
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
      since: Math.max(top, this.#offsets[this.#offsets.length - 1] ?? 0),
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
      void this.#members.refresh().then(() => this.#markRead(this.#offsets[this.#offsets.length - 1] ?? 0));
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
    const first = this.#offsets[0];
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
    if (isRoomChange(m)) void this.#members.refresh();
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

  /** Shows a message in offset order; false when it is already shown. */
  #insert(m: Message<Json>): boolean {
    if (m.channel !== this.channel || this.#rows.has(m.offset)) return false;
    const row = isRoomChange(m) ? this.#systemRow(m, m.data) : this.#messageRow(m);
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
    return true;
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
    return h(
      "li",
      {
        class: m.from === this.users.me.id ? "msg mine" : "msg",
        testid: "message",
        attrs: { "data-offset": m.offset, "data-channel": m.channel, "data-from": m.from },
      },
      h(
        "div",
        { class: "meta" },
        this.users.link(m.from),
        h("time", { class: "muted", text: clock(m.ts), attrs: { datetime: m.ts, title: m.ts } }),
      ),
      h("div", { class: "text", testid: "message-text" }, withMentions(textOf(m.data), this.users.me.username)),
    );
  }

  #publish(): void {
    const text = this.#input.value.trim();
    if (text === "") return;
    this.#input.value = "";
    this.sb.typing(this.channel, false);
    this.#notice.hidden = true;
    // Shown faded until the server has stored it; the stored message arrives by the subscription.
    const pending = h("li", { class: "msg pending", testid: "message-pending", text });
    this.#pending.append(pending);
    this.#scrollToBottom();
    this.sb.publish(this.channel, { text }).then(
      () => pending.remove(),
      (err: unknown) => {
        pending.remove();
        if (this.#input.value === "") this.#input.value = text;
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
