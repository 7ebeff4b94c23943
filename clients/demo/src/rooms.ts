// The room list (GET /api/v1/rooms, a page at a time) and the forms to create a room or open
// one by name (a name never created is an open public room).

import { describe, h, icon, replace } from "./dom.ts";
import { SwitchboardError, type RoomListing, type Switchboard } from "./sdk.ts";

export const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface RoomsPanel {
  el: HTMLElement;
  /** Marks the open room in the list. */
  select(name: string | null): void;
  refresh(): Promise<void>;
}

export function roomsPanel(sb: Switchboard, openRoom: (name: string) => void): RoomsPanel {
  const list = h("ul", { class: "rooms", testid: "room-list" });
  const more = h("button", { class: "link", testid: "rooms-more", text: "More rooms", attrs: { type: "button" } });
  const status = h("p", { class: "error", testid: "rooms-error" });
  status.hidden = true;
  more.hidden = true;
  let after: string | null = null;
  let selected: string | null = null;
  let loading: Promise<void> | null = null;

  const item = (room: RoomListing) =>
    h(
      "li",
      {},
      h(
        "button",
        {
          class: "room-link",
          testid: "room-link",
          attrs: { type: "button", "data-room": room.name, title: room.private ? "private room" : "public room" },
          on: { click: () => openRoom(room.name) },
        },
        room.private ? h("span", { class: "hash private" }, icon("lock", "private")) : h("span", { class: "hash", text: "#" }),
        room.name,
        room.unread ? h("span", { class: "badge", testid: "room-unread", text: room.unread >= 1000 ? "999+" : String(room.unread) }) : null,
      ),
    );

  const mark = () => {
    for (const b of list.querySelectorAll<HTMLButtonElement>("button.room-link")) {
      b.classList.toggle("active", b.dataset.room?.toLowerCase() === selected?.toLowerCase());
    }
  };

  const load = async (reset: boolean) => {
    status.hidden = true;
    try {
      const page = await sb.api.rooms.list({ after: reset ? undefined : (after ?? undefined), limit: 50 });
      if (reset) replace(list);
      for (const room of page.rooms) list.append(item(room));
      after = page.next_after;
      more.hidden = after === null;
      if (reset && page.rooms.length === 0) list.append(h("li", { class: "muted empty", text: "No rooms yet: create one." }));
      mark();
    } catch (err) {
      status.textContent = `Rooms: ${describe(err)}`;
      status.hidden = false;
    }
  };
  const refresh = () => (loading ??= load(true).finally(() => (loading = null)));
  more.addEventListener("click", () => void load(false));

  // Create a room, or open one by name.
  const name = h("input", {
    testid: "room-name",
    attrs: { placeholder: "room name", "aria-label": "Room name", maxlength: 64, required: true, pattern: "[A-Za-z0-9_.\\-]+" },
  });
  const isPrivate = h("input", { testid: "room-private", attrs: { type: "checkbox" } });
  const members = h("input", {
    testid: "room-members",
    attrs: { placeholder: "members: alice, bob", "aria-label": "Members (usernames)" },
  });
  members.disabled = true;
  isPrivate.addEventListener("change", () => (members.disabled = !isPrivate.checked));
  const formError = h("p", { class: "error", testid: "room-form-error" });
  formError.hidden = true;
  const create = h("button", { testid: "room-create", text: "Create", attrs: { type: "submit" } });
  const open = h("button", { class: "secondary", testid: "room-open", text: "Open", attrs: { type: "button" } });

  const valid = (): string | null => {
    const n = name.value.trim();
    if (!ROOM_NAME.test(n)) {
      formError.textContent = "A room name is 1–64 of A–Z a–z 0–9 _ . -";
      formError.hidden = false;
      return null;
    }
    formError.hidden = true;
    return n;
  };
  const form = h(
    "form",
    {
      class: "room-form",
      testid: "room-form",
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const n = valid();
          if (n === null) return;
          create.disabled = true;
          try {
            const names = isPrivate.checked ? members.value.split(/[\s,]+/).filter((m) => m.length > 0) : [];
            const room = await sb.api.rooms.create({ name: n, private: isPrivate.checked, members: names });
            name.value = members.value = "";
            await refresh();
            openRoom(room.name);
          } catch (err) {
            formError.textContent =
              err instanceof SwitchboardError && err.code === "conflict" ? `${err.message} (use Open to join it)` : describe(err);
            formError.hidden = false;
          } finally {
            create.disabled = false;
          }
        },
      },
    },
    name,
    h("label", { class: "check" }, isPrivate, "private, members:"),
    members,
    formError,
    h("div", { class: "row" }, create, open),
  );
  open.addEventListener("click", () => {
    const n = valid();
    if (n !== null) {
      name.value = "";
      openRoom(n);
    }
  });

  const reload = h("button", {
    class: "link icon",
    testid: "rooms-refresh",
    text: "↻",
    attrs: { type: "button", title: "Refresh the room list", "aria-label": "Refresh the room list" },
    on: { click: () => void refresh() },
  });
  const el = h(
    "section",
    { class: "panel", testid: "rooms" },
    h("h2", {}, "Rooms ", reload),
    list,
    more,
    status,
    h("details", { class: "create-room", attrs: { open: true } }, h("summary", { testid: "room-form-toggle", text: "New room" }), form),
  );
  return {
    el,
    select(n) {
      selected = n;
      mark();
    },
    refresh,
  };
}
