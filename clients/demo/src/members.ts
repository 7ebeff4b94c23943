// The open room's members and their roles, with the owner's and admins' controls: add someone,
// make admin, remove, ban; and leaving. Rooms that were never created have no members (anyone
// may use them), and no panel. The list is read again after each system message of the room, so it follows
// every change, wherever it was made.

import { describe, h, replace } from "./dom.ts";
import { SwitchboardError, type RoomMember, type RoomRole, type Switchboard } from "./sdk.ts";
import { blockButton, type Users } from "./users.ts";

export interface MemberList {
  el: HTMLElement;
  refresh(): Promise<void>;
  /** Whether the room was created (known after the first refresh): only those keep read markers. */
  readonly created: boolean;
  /** The viewer's role in the room (after a refresh), undefined when not a member. */
  readonly role: RoomRole | undefined;
  /** The members shown, the viewer included. */
  readonly members: RoomMember[];
}

/** Members shown at most (a demo room is small; the server pages the rest). */
const SHOWN = 200;

export function memberList(sb: Switchboard, users: Users, room: string): MemberList {
  const list = h("ul", { class: "members", testid: "member-list" });
  const notice = h("p", { class: "error", testid: "members-error", attrs: { role: "alert" } });
  notice.hidden = true;
  const add = h("input", { testid: "member-add", attrs: { placeholder: "add by username", "aria-label": "Add member" } });
  const addForm = h(
    "form",
    {
      class: "member-add",
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const username = add.value.trim();
          if (username === "") return;
          add.value = "";
          act(() => sb.api.rooms.addMember(room, { username }));
        },
      },
    },
    add,
  );
  const leave = h("button", { class: "link", testid: "room-leave", text: "Leave room", attrs: { type: "button" } });
  leave.addEventListener("click", () => act(() => sb.api.rooms.leave(room)));
  const el = h("aside", { class: "panel presence-panel", testid: "members" }, h("h3", { text: "Members" }), list, addForm, leave, notice);
  let mine: RoomRole | undefined;

  const act = (change: () => Promise<unknown>, reload = true) => {
    notice.hidden = true;
    change().then(
      () => (reload ? refresh() : undefined),
      (err: unknown) => {
        notice.textContent = describe(err);
        notice.hidden = false;
      },
    );
  };

  const row = (m: RoomMember) => {
    const controls: HTMLElement[] = [];
    const above = mine === "owner" || (mine === "admin" && m.role === "member");
    if (m.id !== users.me.id) {
      // Anyone: a direct message with them (not from inside that very conversation), a block.
      if (!room.startsWith("dm.")) {
        controls.push(
          h("button", {
            class: "link",
            testid: "member-dm",
            text: "message",
            attrs: { type: "button" },
            on: { click: () => act(() => users.openDm(m.id), false) },
          }),
        );
      }
      controls.push(
        blockButton(users, m.id, "member-block", (err) => {
          notice.textContent = describe(err);
          notice.hidden = false;
        }),
      );
    }
    if (above && m.id !== users.me.id) {
      const promote = m.role === "member" ? "admin" : "member";
      controls.push(
        h("button", {
          class: "link",
          testid: "member-role",
          text: promote === "admin" ? "make admin" : "make member",
          attrs: { type: "button" },
          on: { click: () => act(() => sb.api.rooms.setRole(room, m.id, promote)) },
        }),
        h("button", {
          class: "link",
          testid: "member-remove",
          text: "remove",
          attrs: { type: "button" },
          on: { click: () => act(() => sb.api.rooms.removeMember(room, m.id)) },
        }),
        h("button", {
          class: "link",
          testid: "member-ban",
          text: "ban",
          attrs: { type: "button" },
          on: { click: () => act(() => sb.api.rooms.ban(room, m.id)) },
        }),
      );
    }
    return h(
      "li",
      { testid: "member", attrs: { "data-user-id": m.id, "data-username": m.username, "data-role": m.role } },
      users.link(m.id, m.username),
      h("span", { class: "muted", text: m.role === "member" ? "" : ` ${m.role}` }),
      ...controls,
    );
  };

  async function refresh(): Promise<void> {
    try {
      const detail = await sb.api.rooms.get(room);
      panel.created = detail.created;
      if (!detail.created) {
        el.hidden = true;
        return;
      }
      const page = await sb.api.rooms.members(room, { limit: SHOWN });
      mine = detail.role;
      panel.role = mine;
      panel.members = page.members;
      for (const m of page.members) users.remember(m);
      replace(list, ...page.members.map(row));
      addForm.hidden = mine !== "owner" && mine !== "admin";
      leave.hidden = mine === undefined || mine === "owner";
      el.hidden = false;
    } catch (err) {
      // An uncreated room has no members list; a room one was removed from refuses it.
      if (err instanceof SwitchboardError && (err.code === "not_found" || err.code === "forbidden")) {
        el.hidden = true;
        return;
      }
      notice.textContent = describe(err);
      notice.hidden = false;
    }
  }

  el.hidden = true;
  const panel = { el, refresh, created: false, role: undefined as RoomRole | undefined, members: [] as RoomMember[] };
  return panel;
}
