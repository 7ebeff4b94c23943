// The logged-out page: log in, or create an account (which then logs in).

import { describe, h } from "./dom.ts";
import { SwitchboardError, type Switchboard } from "./sdk.ts";

export function authView(sb: Switchboard, notice: string | null, onLoggedIn: () => void): HTMLElement {
  const username = h("input", {
    testid: "auth-username",
    attrs: { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32, pattern: "[A-Za-z0-9_.\\-]+" },
  });
  const password = h("input", {
    testid: "auth-password",
    attrs: { name: "password", type: "password", autocomplete: "current-password", required: true, minlength: 8, maxlength: 128 },
  });
  const error = h("p", { class: "error", testid: "auth-error", attrs: { role: "alert" } });
  error.hidden = true;
  const login = h("button", { testid: "auth-login", text: "Log in", attrs: { type: "submit" } });
  const register = h("button", { class: "secondary", testid: "auth-register", text: "Create account", attrs: { type: "button" } });

  const busy = (on: boolean) => {
    login.disabled = register.disabled = on;
  };
  const fail = (err: unknown) => {
    error.textContent = explain(err);
    error.hidden = false;
    busy(false);
  };
  const go = async (create: boolean) => {
    if (!form.reportValidity()) return;
    error.hidden = true;
    busy(true);
    try {
      if (create) await sb.register(username.value, password.value);
      await sb.login(username.value, password.value);
      onLoggedIn();
    } catch (err) {
      fail(err);
    }
  };

  const form = h(
    "form",
    {
      class: "auth card",
      testid: "auth-form",
      on: {
        submit: (ev) => {
          ev.preventDefault();
          void go(false);
        },
      },
    },
    h("h1", { text: "Switchboard" }),
    h("p", { class: "muted", text: "Chat rooms, a home feed and notifications, live." }),
    notice ? h("p", { class: "notice", testid: "auth-notice", text: notice }) : null,
    h("label", {}, "Username", username),
    h("label", {}, "Password", password),
    error,
    h("div", { class: "row" }, login, register),
  );
  register.addEventListener("click", () => void go(true));
  queueMicrotask(() => username.focus());
  return h("div", { class: "auth-page" }, form);
}

function explain(err: unknown): string {
  if (err instanceof SwitchboardError) {
    switch (err.code) {
      case "unauthorized":
        return "Wrong username or password.";
      case "conflict":
        return "That username is taken.";
      case "rate_limited":
        return "Too many attempts; wait a minute and try again.";
      case "unprocessable":
        return `Not accepted: ${err.message}`;
      case "network":
        return "The server cannot be reached.";
      default:
        return err.message;
    }
  }
  return describe(err);
}
