// The connection indicator: connected, or (re)connecting with the SDK's next attempt.
// `data-state` is the SDK's state and `data-changed-at` the page's clock at the change, which
// the reconnect measurement reads.

import { h } from "./dom.ts";
import type { StateChange, Switchboard } from "./sdk.ts";

export function connectionIndicator(sb: Switchboard): { el: HTMLElement; dispose: () => void } {
  const label = h("span", { class: "conn-label" });
  const el = h("span", { class: "conn", testid: "conn-state", attrs: { role: "status", "aria-live": "polite" } }, h("span", { class: "dot" }), label);
  let everConnected = false;

  const render = (change: Pick<StateChange, "state" | "retryInMs">) => {
    const { state } = change;
    if (state === "connected") everConnected = true;
    el.dataset.state = state;
    el.dataset.changedAt = String(Date.now());
    el.className = `conn ${state}`;
    switch (state) {
      case "connected":
        label.textContent = "connected";
        break;
      case "connecting":
        label.textContent = everConnected ? "reconnecting…" : "connecting…";
        break;
      case "disconnected": {
        const s = change.retryInMs === undefined ? "" : ` (retry in ${Math.max(1, Math.round(change.retryInMs / 1000))} s)`;
        label.textContent = `reconnecting…${s}`;
        break;
      }
      case "closed":
      case "idle":
        label.textContent = "offline";
        break;
    }
    el.title = label.textContent ?? "";
  };
  render({ state: sb.state });
  const off = sb.on("state", render);
  return { el, dispose: off };
}
