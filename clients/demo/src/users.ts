// Who is who: messages name their sender by id, so names are looked up once and remembered.
// Also the "People" panel: find a user by name, see their profile, follow or unfollow them.

import { describe, h, replace } from "./dom.ts";
import { SwitchboardError, type Profile, type Switchboard, type UserInfo } from "./sdk.ts";

export class Users {
  readonly #names = new Map<string, string>();
  readonly #lookups = new Map<string, Promise<string>>();
  readonly #following = new Set<string>();
  readonly #blocked = new Set<string>();
  #blocksLoaded: Promise<void> | null = null;
  /** Opens a user's profile in the People panel (set by the panel). */
  open: (id: string) => void = () => undefined;
  /** Opens a room in the chat view (set by the app). */
  openRoom: (room: string) => void = () => undefined;

  constructor(
    readonly sb: Switchboard,
    readonly me: UserInfo,
  ) {
    this.remember(me);
  }

  remember(user: UserInfo): void {
    this.#names.set(user.id, user.username);
  }

  /** The name of `id`, looked up once (`system` is a server API key, not a user). */
  name(id: string): Promise<string> {
    const known = this.#names.get(id);
    if (known !== undefined) return Promise.resolve(known);
    if (id === "system") return Promise.resolve("system");
    let lookup = this.#lookups.get(id);
    if (!lookup) {
      lookup = this.sb.api.users.get(id).then(
        (p) => {
          this.remember(p);
          return p.username;
        },
        () => {
          this.#lookups.delete(id);
          return "unknown user";
        },
      );
      this.#lookups.set(id, lookup);
    }
    return lookup;
  }

  /** A button showing the user's name (filled in when known) that opens their profile. */
  link(id: string, known?: string): HTMLButtonElement {
    const el = h("button", { class: "user-link", testid: "user-link", attrs: { type: "button", "data-user-id": id } });
    const name = known ?? this.#names.get(id);
    if (known) this.remember({ id, username: known });
    el.textContent = name ?? "…";
    if (name === undefined) void this.name(id).then((n) => (el.textContent = n));
    if (id === "system") el.disabled = true;
    else el.addEventListener("click", () => this.open(id));
    return el;
  }

  /** Opens (creating it the first time) the direct message with `id`, in the chat view. */
  async openDm(id: string): Promise<void> {
    const dm = await this.sb.api.dms.open(id);
    this.remember(dm.user);
    this.openRoom(dm.room);
  }

  isBlocked(id: string): boolean {
    return this.#blocked.has(id);
  }

  /** Loads who the viewer blocked (once; the first 200: enough for a demo's buttons). */
  loadBlocks(): Promise<void> {
    this.#blocksLoaded ??= this.sb.api.blocks.list({ limit: 200 }).then(
      (page) => {
        for (const u of page.users) {
          this.#blocked.add(u.id);
          this.remember(u);
        }
      },
      (err: unknown) => {
        this.#blocksLoaded = null;
        throw err;
      },
    );
    return this.#blocksLoaded;
  }

  async block(id: string): Promise<void> {
    await this.sb.api.blocks.add(id);
    this.#blocked.add(id);
  }

  async unblock(id: string): Promise<void> {
    try {
      await this.sb.api.blocks.remove(id);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "not_found") throw err;
    }
    this.#blocked.delete(id);
  }

  isFollowing(id: string): boolean {
    return this.#following.has(id);
  }

  /** Loads who the viewer follows (the first 200: enough for a demo's buttons). */
  async loadFollowing(): Promise<void> {
    const page = await this.sb.api.users.following(this.me.id, { limit: 200 });
    for (const u of page.users) {
      this.#following.add(u.id);
      this.remember(u);
    }
  }

  async follow(id: string): Promise<void> {
    await this.sb.api.users.follow(id);
    this.#following.add(id);
  }

  async unfollow(id: string): Promise<void> {
    try {
      await this.sb.api.users.unfollow(id);
    } catch (err) {
      // Not following (another tab unfollowed): the state we wanted.
      if (!(err instanceof SwitchboardError) || err.code !== "not_found") throw err;
    }
    this.#following.delete(id);
  }
}

/** The People panel: a find-user box and the profile card of the user last opened. */
export function peoplePanel(users: Users): HTMLElement {
  const input = h("input", {
    testid: "find-user-input",
    attrs: { placeholder: "username", "aria-label": "Find a user by name", maxlength: 32, required: true },
  });
  const card = h("div", { class: "profile", testid: "profile" });
  card.hidden = true;

  let shown = 0;
  const render = async (load: () => Promise<Profile>) => {
    const mine = ++shown;
    card.hidden = false;
    replace(card, h("p", { class: "muted", text: "Loading…" }));
    let profile: Profile;
    try {
      profile = await load();
    } catch (err) {
      if (mine !== shown) return;
      const text = err instanceof SwitchboardError && err.code === "not_found" ? "No such user." : describe(err);
      replace(card, h("p", { class: "error", testid: "profile-error", text }));
      return;
    }
    if (mine !== shown) return;
    users.remember(profile);
    const self = profile.id === users.me.id;
    const button = h("button", { testid: "follow-toggle", attrs: { type: "button" } });
    const error = h("p", { class: "error" });
    error.hidden = true;
    const label = () => {
      const on = users.isFollowing(profile.id);
      button.textContent = on ? "Unfollow" : "Follow";
      button.dataset.following = String(on);
      button.classList.toggle("secondary", on);
    };
    label();
    const dm = h("button", { class: "secondary", testid: "profile-dm", text: "Message", attrs: { type: "button" } });
    dm.addEventListener("click", () => {
      error.hidden = true;
      users.openDm(profile.id).catch((err: unknown) => {
        error.textContent = describe(err);
        error.hidden = false;
      });
    });
    const block = blockButton(users, profile.id, "profile-block", (err) => {
      error.textContent = describe(err);
      error.hidden = false;
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.hidden = true;
      try {
        if (users.isFollowing(profile.id)) await users.unfollow(profile.id);
        else await users.follow(profile.id);
        label();
        // The counts changed: show the server's.
        void render(() => users.sb.api.users.get(profile.id));
      } catch (err) {
        error.textContent = describe(err);
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    replace(
      card,
      h("div", { class: "profile-name", testid: "profile-name", text: profile.username }),
      h(
        "div",
        { class: "muted" },
        h("span", { testid: "profile-followers", text: String(profile.followers) }),
        profile.followers === 1 ? " follower · " : " followers · ",
        h("span", { testid: "profile-following", text: String(profile.following) }),
        " following",
      ),
      self ? h("p", { class: "muted", text: "That is you." }) : h("div", { class: "row" }, button, dm, block),
      error,
    );
  };

  users.open = (id) => void render(() => users.sb.api.users.get(id));

  const form = h(
    "form",
    {
      class: "row",
      testid: "find-user",
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const name = input.value.trim();
          if (!name) return;
          void render(async () => users.sb.api.users.get((await users.sb.api.users.byUsername(name)).id));
        },
      },
    },
    input,
    h("button", { class: "secondary", testid: "find-user-submit", text: "Find", attrs: { type: "submit" } }),
  );
  return h("section", { class: "panel people", testid: "people" }, h("h2", { text: "People" }), form, card);
}

/** A Block / Unblock toggle for `id` (the viewer's block list is loaded first). */
export function blockButton(users: Users, id: string, testid: string, onError: (err: unknown) => void): HTMLButtonElement {
  const button = h("button", { class: "link", testid, attrs: { type: "button", "data-user-id": id } });
  const label = () => {
    const on = users.isBlocked(id);
    button.textContent = on ? "unblock" : "block";
    button.dataset.blocked = String(on);
  };
  label();
  void users.loadBlocks().then(label, () => undefined);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await users.loadBlocks();
      if (users.isBlocked(id)) await users.unblock(id);
      else await users.block(id);
      label();
    } catch (err) {
      onError(err);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
