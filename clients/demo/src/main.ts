// The demo's entry: the login page or the app, and back to the login page when the login ends
// (logout here, or a session revoked or expired elsewhere).

import { App } from "./app.ts";
import { authView } from "./auth-view.ts";
import { replace } from "./dom.ts";
import type { Switchboard } from "./sdk.ts";
import { createClient } from "./session.ts";

const root = document.getElementById("app")!;
let sb: Switchboard = createClient();
let app: App | null = null;

const NOTICES = {
  logout: null,
  revoked: "You were logged out: the session was ended (by a logout elsewhere, say).",
  refresh_failed: "Your session has expired: log in again.",
} as const;

function wire(client: Switchboard): void {
  client.on("logged_out", ({ reason }) => {
    if (client !== sb) return;
    app?.dispose();
    app = null;
    // A fresh client for the next login: nothing of this one's subscriptions carries over.
    client.close();
    sb = createClient();
    wire(sb);
    showAuth(NOTICES[reason]);
  });
}

function showApp(): void {
  const me = sb.user;
  if (!me) {
    showAuth(null);
    return;
  }
  app = new App(sb, me, () => {
    sb.logout().catch(() => undefined);
  });
  replace(root, app.el);
  app.start();
}

function showAuth(notice: string | null): void {
  document.title = "Switchboard";
  replace(root, authView(sb, notice, showApp));
}

wire(sb);
// A stored login (an earlier visit) goes straight to the app.
if (sb.user) showApp();
else showAuth(null);
