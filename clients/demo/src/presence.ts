// Who is online in the open room: a `presence` request after each (re)subscribe, kept current
// by the room's `join` and `leave` events (also those that arrive while the request is out).

import { h, replace } from "./dom.ts";
import type { Switchboard, UserInfo } from "./sdk.ts";
import type { Users } from "./users.ts";

export interface PresenceList {
  el: HTMLElement;
  join(user: UserInfo): void;
  leave(user: UserInfo): void;
  refresh(): Promise<void>;
}

/** Pages read per refresh, at most (a demo room is small; the count is exact anyway). */
const MAX_PAGES = 5;

export function presenceList(sb: Switchboard, users: Users, channel: string): PresenceList {
  const online = new Map<string, UserInfo>();
  let total: number | null = null;
  // Events seen since the current refresh was sent: they are newer than its answer.
  let changes: Map<string, { kind: "join" | "leave"; user: UserInfo }> | null = null;
  const count = h("span", { class: "count", testid: "presence-count", text: "0" });
  const list = h("ul", { class: "presence", testid: "presence-list" });

  const render = () => {
    const sorted = [...online.values()].sort((a, b) => a.username.localeCompare(b.username));
    replace(
      list,
      ...sorted.map((u) =>
        h(
          "li",
          { testid: "presence-user", attrs: { "data-user-id": u.id, "data-username": u.username } },
          h("span", { class: "dot" }),
          users.link(u.id, u.username),
        ),
      ),
    );
    count.textContent = String(Math.max(total ?? 0, online.size));
  };

  const change = (kind: "join" | "leave", user: UserInfo) => {
    users.remember(user);
    changes?.set(user.id, { kind, user });
    const had = online.has(user.id);
    if (kind === "join") online.set(user.id, user);
    else online.delete(user.id);
    if (total !== null && had !== online.has(user.id)) total += kind === "join" ? 1 : -1;
    render();
  };

  const refresh = async () => {
    const mine = new Map<string, { kind: "join" | "leave"; user: UserInfo }>();
    changes = mine;
    const seen = new Map<string, UserInfo>();
    let cursor: string | undefined;
    let pageTotal = 0;
    try {
      for (let i = 0; i < MAX_PAGES; i++) {
        const page = await sb.presence(channel, { cursor, limit: 1000 });
        pageTotal = page.count;
        for (const u of page.users) seen.set(u.id, u);
        cursor = page.cursor;
        if (!cursor || page.users.length === 0) break;
      }
    } catch {
      // The socket went away: the next subscribe refreshes again.
      if (changes === mine) changes = null;
      return;
    }
    if (changes !== mine) return; // a newer refresh is out
    changes = null;
    for (const { kind, user } of mine.values()) {
      if (kind === "join") seen.set(user.id, user);
      else seen.delete(user.id);
    }
    online.clear();
    for (const [id, u] of seen) {
      online.set(id, u);
      users.remember(u);
    }
    total = mine.size === 0 ? pageTotal : seen.size;
    render();
  };

  const el = h("aside", { class: "panel presence-panel", testid: "presence" }, h("h3", {}, "Online ", count), list);
  return { el, join: (u) => change("join", u), leave: (u) => change("leave", u), refresh };
}
