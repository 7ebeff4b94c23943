// The home feed: the newest page from GET /api/v1/feed, then `feed:<my id>` live from that
// page's newest offset; older pages on demand. Items are keyed by their feed offset, newest
// first, so a replayed or re-read item is never shown twice. A composer posts to followers.

import { clock, describe, h, textOf, withMentions } from "./dom.ts";
import type { FeedData, FeedItem, Json, Message, Post, Subscription, Switchboard } from "./sdk.ts";
import type { Users } from "./users.ts";

const PAGE = 30;

export class FeedView {
  readonly el: HTMLElement;
  readonly #list: HTMLElement;
  readonly #more: HTMLButtonElement;
  readonly #notice: HTMLElement;
  readonly #input: HTMLTextAreaElement;
  readonly #post: HTMLButtonElement;
  readonly #rows = new Map<number, HTMLElement>();
  /** Offsets shown, descending (newest first). */
  readonly #offsets: number[] = [];
  #before: number | null = null;
  #sub: Subscription<Json> | null = null;
  #started = false;

  constructor(
    readonly sb: Switchboard,
    readonly users: Users,
  ) {
    this.#input = h("textarea", {
      testid: "post-input",
      attrs: { placeholder: "What is happening?", "aria-label": "New post", rows: 3, maxlength: 4000 },
    });
    this.#post = h("button", { testid: "post-submit", text: "Post", attrs: { type: "submit" } });
    const composer = h(
      "form",
      {
        class: "post-composer card",
        testid: "post-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            void this.#create();
          },
        },
      },
      this.#input,
      h("div", { class: "row end" }, this.#post),
    );
    this.#list = h("ol", { class: "feed", testid: "feed-list", attrs: { "aria-live": "polite" } });
    this.#more = h("button", { class: "link", testid: "feed-more", text: "Older posts", attrs: { type: "button" } });
    this.#more.hidden = true;
    this.#more.addEventListener("click", () => void this.#load());
    this.#notice = h("p", { class: "error", testid: "feed-error", attrs: { role: "alert" } });
    this.#notice.hidden = true;
    this.el = h(
      "section",
      { class: "home", testid: "feed", attrs: { "data-state": "loading" } },
      h("header", { class: "view-header" }, h("h2", { text: "Home" }), h("span", { class: "muted", text: "posts by you and the people you follow" })),
      composer,
      this.#notice,
      this.#list,
      this.#more,
    );
  }

  /** Loads the first page and subscribes (once per login: the feed stays live off-screen too). */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const newest = await this.#load();
    if (newest === null) {
      this.#started = false;
      return;
    }
    this.#sub = this.sb.subscribe<Json>(`feed:${this.users.me.id}`, {
      since: newest,
      onMessage: (m) => this.#live(m),
      onError: (err) => this.#error(`The feed stopped: ${describe(err)}`),
    });
    this.#sub.on("caught_up", () => (this.el.dataset.state = "live"));
  }

  dispose(): void {
    this.#sub?.unsubscribe();
    this.el.remove();
  }

  focus(): void {
    this.#input.focus();
  }

  /** A page (the newest at first); resolves with the newest offset read, 0 for an empty feed, null on failure. */
  async #load(): Promise<number | null> {
    this.#more.disabled = true;
    try {
      const page = await this.sb.api.feed({ before: this.#before ?? undefined, limit: PAGE });
      for (const item of page.items) this.#insert(item);
      const first = this.#before === null;
      this.#before = page.next_before;
      this.#more.hidden = page.next_before === null;
      this.#empty();
      return first ? (page.items[0]?.offset ?? 0) : 0;
    } catch (err) {
      this.#error(`Could not load the feed: ${describe(err)}`);
      return null;
    } finally {
      this.#more.disabled = false;
    }
  }

  #live(m: Message<Json>): void {
    const data = m.data as unknown as FeedData;
    if (data && typeof data === "object" && data.kind === "post" && data.post) this.#insert({ offset: m.offset, post: data.post });
    this.#empty();
  }

  #insert(item: FeedItem): void {
    if (this.#rows.has(item.offset)) return;
    const row = this.#render(item.offset, item.post);
    // Descending: the first shown offset below this one comes after it.
    let lo = 0;
    let hi = this.#offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#offsets[mid]! > item.offset) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#offsets[lo];
    this.#list.insertBefore(row, next === undefined ? null : (this.#rows.get(next) ?? null));
    this.#offsets.splice(lo, 0, item.offset);
    this.#rows.set(item.offset, row);
  }

  #render(offset: number, post: Post): HTMLElement {
    this.users.remember(post.author);
    return h(
      "li",
      { class: "post card", testid: "post", attrs: { "data-offset": offset, "data-post-id": post.id, "data-author": post.author.username } },
      h(
        "div",
        { class: "meta" },
        this.users.link(post.author.id, post.author.username),
        h("time", { class: "muted", text: clock(post.ts), attrs: { datetime: new Date(post.ts).toISOString() } }),
      ),
      h("div", { class: "text", testid: "post-text" }, withMentions(textOf(post.data), this.users.me.username)),
    );
  }

  async #create(): Promise<void> {
    const text = this.#input.value.trim();
    if (text === "") return;
    this.#post.disabled = true;
    this.#notice.hidden = true;
    try {
      await this.sb.api.posts.create({ text });
      // It reaches this feed (and the followers') by the fan-out, live.
      this.#input.value = "";
    } catch (err) {
      this.#error(`Not posted: ${describe(err)}`);
    } finally {
      this.#post.disabled = false;
    }
  }

  #empty(): void {
    const none = this.#rows.size === 0;
    let hint = this.#list.querySelector<HTMLElement>("li.empty");
    if (none && !hint) {
      hint = h("li", { class: "empty muted", testid: "feed-empty", text: "Nothing here yet: post something, or follow people." });
      this.#list.append(hint);
    } else if (!none) hint?.remove();
  }

  #error(text: string): void {
    this.#notice.textContent = text;
    this.#notice.hidden = false;
  }
}
