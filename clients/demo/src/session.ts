// The demo's one client: the login and each channel's last offset live in localStorage, so a
// reload stays logged in and every subscription resumes where it was.

import { StorageOffsetStore, StorageTokenStore, Switchboard } from "./sdk.ts";

export function createClient(): Switchboard {
  return new Switchboard({
    // The page is served by the server (or the balancer in front of it): same origin.
    url: location.origin,
    tokenStore: new StorageTokenStore(localStorage, "switchboard.demo.tokens"),
    offsetStore: new StorageOffsetStore(localStorage, "switchboard.demo.offset."),
    // A page someone is looking at: come back quickly after a restart (at most 5 s apart).
    backoff: { initialMs: 500, maxMs: 5_000 },
  });
}
