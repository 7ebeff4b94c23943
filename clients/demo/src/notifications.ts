// The bell: the unread count (GET unread_count, then live from `user:<my id>`: +1 for each
// notification, set from each `read` event), and a panel listing the notifications with a
// "mark all read" button.
//
// The count is fetched after the subscription is live, so a notification arriving in between
// may be counted twice for a moment; a refetch shortly after each live notification settles it.

import { clock, describe, h, icon, replace } from "./dom.ts";
import type { Json, ListedNotification, Message, Subscription, Switchboard, UserEvent } from "./sdk.ts";
import type { Users } from "./users.ts";

const RECOUNT_AFTER_MS = 750;

export class Notifications {
  readonly el: HTMLElement;
  readonly #bell: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #panel: HTMLElement;
  readonly #list: HTMLElement;
  readonly #notice: HTMLElement;
  readonly #markAll: HTMLButtonElement;
  readonly #rows = new Map<number, HTMLElement>();
  #count = 0;
  #sub: Subscription<Json> | null = null;
  #recount: ReturnType<typeof setTimeout> | undefined;
  #loaded = false;
  readonly #onDocClick = (ev: MouseEvent) => {
    if (!this.el.contains(ev.target as Node)) this.close();
  };

  constructor(
    readonly sb: Switchboard,
    readonly users: Users,
    readonly openRoom: (room: string) => void,
  ) {
    this.#badge = h("span", { class: "badge", testid: "bell-count", text: "0" });
    this.#bell = h(
      "button",
      {
        class: "bell",
        testid: "bell",
        attrs: { type: "button", "aria-haspopup": "true", "aria-expanded": "false", "aria-label": "Notifications", "data-count": 0 },
        on: { click: () => (this.#panel.hidden ? this.open() : this.close()) },
      },
      icon("bell"),
      this.#badge,
    );
    this.#list = h("ol", { class: "notifications", testid: "notif-list" });
    this.#notice = h("p", { class: "error" });
    this.#notice.hidden = true;
    this.#markAll = h("button", {
      class: "link",
      testid: "notif-mark-all",
      text: "Mark all read",
      attrs: { type: "button" },
      on: { click: () => void this.#markAllRead() },
    });
    this.#panel = h(
      "div",
      { class: "notif-panel card", testid: "notif-panel", attrs: { role: "dialog", "aria-label": "Notifications" } },
      h("header", { class: "row spread" }, h("h3", { text: "Notifications" }), this.#markAll),
      this.#notice,
      this.#list,
    );
    this.#panel.hidden = true;
    this.el = h("div", { class: "notif" }, this.#bell, this.#panel);
    this.#setCount(0);
  }

  async start(): Promise<void> {
    // Live from now (not from a stored offset: the count below already has the older ones),
    // then from the last delivered offset after each reconnect.
    const sub = this.sb.subscribe<Json>(`user:${this.users.me.id}`, {
      resume: false,
      onMessage: (m) => this.#live(m),
    });
    this.#sub = sub;
    try {
      await sub.ready;
    } catch {
      // Reported by the subscription; the count below still works over HTTP.
    }
    await this.#fetchCount();
  }

  dispose(): void {
    clearTimeout(this.#recount);
    document.removeEventListener("click", this.#onDocClick);
    this.#sub?.unsubscribe();
  }

  open(): void {
    this.#panel.hidden = false;
    this.#bell.setAttribute("aria-expanded", "true");
    document.addEventListener("click", this.#onDocClick);
    void this.#load();
  }

  close(): void {
    this.#panel.hidden = true;
    this.#bell.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", this.#onDocClick);
  }

  async #load(): Promise<void> {
    this.#notice.hidden = true;
    try {
      const page = await this.sb.api.notifications.list({ limit: 50 });
      for (const n of page.notifications) this.#add(n, n.read);
      this.#loaded = true;
      this.#empty();
    } catch (err) {
      this.#notice.textContent = describe(err);
      this.#notice.hidden = false;
    }
  }

  async #fetchCount(): Promise<void> {
    try {
      this.#setCount(await this.sb.api.notifications.unreadCount());
    } catch {
      // Keep the live count.
    }
  }

  #live(m: Message<Json>): void {
    const event = m.data as unknown as UserEvent;
    if (!event || typeof event !== "object") return;
    // A room's read marker moved: not a notification (the room list shows unread counts).
    if (event.kind === "room_read") return;
    if (event.kind === "read") {
      this.#setCount(event.unread_count);
      for (const [offset, row] of this.#rows) {
        const id = row.dataset.id ?? "";
        if ((event.all && (event.upto === undefined || offset <= event.upto)) || event.ids?.includes(id)) {
          this.#markRow(row, true);
        }
      }
      return;
    }
    this.#setCount(this.#count + 1);
    if (this.#loaded) {
      this.#add({ ...event, offset: m.offset, read: false }, false);
      this.#empty();
    }
    clearTimeout(this.#recount);
    this.#recount = setTimeout(() => void this.#fetchCount(), RECOUNT_AFTER_MS);
  }

  #add(n: ListedNotification, read: boolean): void {
    if (this.#rows.has(n.offset)) return;
    const row = h(
      "li",
      { class: "notification", testid: "notif-item", attrs: { "data-offset": n.offset, "data-kind": n.kind, "data-id": n.id } },
      h("div", { class: "what" }, ...this.#describe(n)),
      h("time", { class: "muted", text: clock(n.created_at) }),
    );
    this.#markRow(row, read);
    // Newest first.
    const next = [...this.#rows.keys()].filter((o) => o < n.offset).sort((a, b) => b - a)[0];
    this.#list.insertBefore(row, next === undefined ? null : (this.#rows.get(next) ?? null));
    this.#rows.set(n.offset, row);
  }

  #describe(n: ListedNotification): (Node | string)[] {
    const who = n.from ? this.users.link(n.from.id, n.from.username) : "someone";
    switch (n.kind) {
      case "follow":
        return [who, " followed you"];
      case "mention": {
        const room = h("button", {
          class: "link",
          text: `#${n.room}`,
          attrs: { type: "button" },
          on: {
            click: () => {
              this.close();
              this.openRoom(n.room);
            },
          },
        });
        return [who, " mentioned you in ", room, ": ", h("q", { class: "excerpt", testid: "notif-excerpt", text: n.message?.excerpt ?? "" })];
      }
      case "reply":
        return [who, " replied to your post: ", h("q", { class: "excerpt", text: textOfPost(n.reply?.data) })];
      case "reaction":
        return [who, ` reacted ${n.emoji} to your post`];
      default:
        return [who, ` (${String((n as { kind?: unknown }).kind)})`];
    }
  }

  #markRow(row: HTMLElement, read: boolean): void {
    row.classList.toggle("unread", !read);
    row.dataset.read = String(read);
  }

  async #markAllRead(): Promise<void> {
    this.#markAll.disabled = true;
    try {
      const res = await this.sb.api.notifications.markRead({ all: true });
      this.#setCount(res.unread_count);
      for (const row of this.#rows.values()) this.#markRow(row, true);
    } catch (err) {
      this.#notice.textContent = describe(err);
      this.#notice.hidden = false;
    } finally {
      this.#markAll.disabled = false;
    }
  }

  #setCount(n: number): void {
    this.#count = Math.max(0, n);
    this.#badge.textContent = this.#count > 99 ? "99+" : String(this.#count);
    this.#badge.hidden = this.#count === 0;
    this.#bell.dataset.count = String(this.#count);
    this.#bell.classList.toggle("has-unread", this.#count > 0);
    this.#bell.title = this.#count === 1 ? "1 unread notification" : `${this.#count} unread notifications`;
  }

  #empty(): void {
    const none = this.#rows.size === 0;
    const hint = this.#list.querySelector("li.empty");
    if (none && !hint) replace(this.#list, h("li", { class: "empty muted", text: "No notifications yet." }));
    else if (!none) hint?.remove();
  }
}

function textOfPost(data: unknown): string {
  if (data && typeof data === "object" && typeof (data as { text?: unknown }).text === "string") return (data as { text: string }).text;
  return "";
}
