// The logged-in page: header (connection, bell, who is logged in), sidebar (home, rooms,
// people) and the main view, chosen by the URL's hash (`#/home`, `#/room/<name>`) so a reload
// comes back to the same place.

import { ChatView } from "./chat.ts";
import { describe, h, icon, replace } from "./dom.ts";
import { FeedView } from "./feed.ts";
import { Notifications } from "./notifications.ts";
import { ROOM_NAME, roomsPanel } from "./rooms.ts";
import type { Switchboard, UserInfo } from "./sdk.ts";
import { connectionIndicator } from "./status.ts";
import { Users, peoplePanel } from "./users.ts";

export type Route = { view: "home" } | { view: "room"; room: string };

export function parseRoute(hash: string): Route {
  const m = /^#\/room\/(.+)$/.exec(hash);
  if (m) {
    let room = m[1]!;
    try {
      room = decodeURIComponent(room);
    } catch {
      return { view: "home" };
    }
    if (ROOM_NAME.test(room)) return { view: "room", room };
  }
  return { view: "home" };
}

export function roomHash(room: string): string {
  return `#/room/${encodeURIComponent(room)}`;
}

export class App {
  readonly el: HTMLElement;
  readonly #main: HTMLElement;
  readonly #toast: HTMLElement;
  readonly #users: Users;
  readonly #feed: FeedView;
  readonly #notifications: Notifications;
  readonly #rooms: ReturnType<typeof roomsPanel>;
  readonly #home: HTMLButtonElement;
  readonly #cleanup: (() => void)[] = [];
  #chat: ChatView | null = null;

  constructor(
    readonly sb: Switchboard,
    me: UserInfo,
    readonly logout: () => void,
  ) {
    this.#users = new Users(sb, me);
    this.#feed = new FeedView(sb, this.#users);
    const go = (room: string) => {
      location.hash = roomHash(room);
    };
    this.#users.openRoom = go;
    this.#notifications = new Notifications(sb, this.#users, go);
    this.#rooms = roomsPanel(sb, go);
    const status = connectionIndicator(sb);
    this.#cleanup.push(status.dispose);

    this.#toast = h("div", { class: "toast", testid: "toast", attrs: { role: "alert" } });
    this.#toast.hidden = true;
    this.#cleanup.push(sb.on("error", (err) => this.toast(describe(err))));

    const header = h(
      "header",
      { class: "top-bar" },
      h("div", { class: "brand", text: "Switchboard" }),
      status.el,
      h("div", { class: "spacer" }),
      this.#notifications.el,
      h("span", { class: "me", testid: "me", text: me.username }),
      h("button", { class: "secondary", testid: "logout", text: "Log out", attrs: { type: "button" }, on: { click: () => this.logout() } }),
    );
    this.#home = h("button", {
      class: "nav-link",
      testid: "nav-home",
      attrs: { type: "button" },
      on: { click: () => (location.hash = "#/home") },
    }, icon("home"), "Home");
    const sidebar = h(
      "nav",
      { class: "sidebar" },
      h("section", { class: "panel" }, this.#home),
      this.#rooms.el,
      peoplePanel(this.#users),
    );
    this.#main = h("main", { class: "content" });
    this.el = h("div", { class: "shell", testid: "shell", attrs: { "data-user": me.username } }, header, h("div", { class: "body" }, sidebar, this.#main), this.#toast);

    const onHash = () => this.route(parseRoute(location.hash));
    window.addEventListener("hashchange", onHash);
    this.#cleanup.push(() => window.removeEventListener("hashchange", onHash));
  }

  /** Starts the live parts (the bell, the feed) and shows the current route. */
  start(): void {
    this.route(parseRoute(location.hash));
    void this.#notifications.start();
    void this.#feed.start();
    void this.#rooms.refresh();
    void this.#users.loadFollowing().catch(() => undefined);
  }

  route(route: Route): void {
    if (route.view === "room") {
      if (this.#chat && this.#chat.room === route.room) return;
      this.#chat?.dispose();
      this.#chat = new ChatView(this.sb, this.#users, route.room);
      replace(this.#main, this.#chat.el);
      this.#rooms.select(route.room);
      this.#home.classList.remove("active");
      document.title = `#${route.room} · Switchboard`;
      void this.#chat.start();
      this.#chat.focus();
      return;
    }
    this.#chat?.dispose();
    this.#chat = null;
    // The feed's element is kept (and live) while other views are shown.
    replace(this.#main, this.#feed.el);
    this.#rooms.select(null);
    this.#home.classList.add("active");
    document.title = "Home · Switchboard";
  }

  toast(text: string): void {
    this.#toast.textContent = text;
    this.#toast.hidden = false;
    clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => (this.#toast.hidden = true), 6_000);
  }
  #toastTimer: ReturnType<typeof setTimeout> | undefined;

  dispose(): void {
    this.#chat?.dispose();
    this.#feed.dispose();
    this.#notifications.dispose();
    clearTimeout(this.#toastTimer);
    for (const off of this.#cleanup.splice(0)) off();
    this.el.remove();
  }
}
