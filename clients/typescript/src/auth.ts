// The login: tokens in a pluggable store, refreshed before the access token expires, one refresh
// at a time however many requests and sockets want a fresh token at once.
//
// Refresh tokens rotate (PROTOCOL.md#auth): presenting a spent one revokes the session, except
// within the server's grace window. So a refresh is never retried with the same token; a 401 to a
// refresh first looks in the store, where another tab may have put the tokens its refresh won.

import { Emitter } from "./emitter.js";
import { SwitchboardError } from "./errors.js";
import type { Credentials, Http } from "./http.js";
import type { TokenStore, Tokens } from "./stores.js";
import type { TokenBody, UserInfo } from "./types.js";

export interface AuthEvents {
  /** New tokens (login or refresh); the connection sends the access token in-band. */
  tokens: Tokens;
  /** The login is gone: logged out here, revoked elsewhere, or a refresh was refused. */
  ended: { reason: "logout" | "revoked" | "refresh_failed" };
}

/** How long before expiry to refresh: 60 s, or half the lifetime when that is shorter. */
export function refreshMargin(lifetimeMs: number): number {
  return Math.min(60_000, lifetimeMs / 2);
}

export class Auth extends Emitter<AuthEvents> implements Credentials {
  #refreshing: Promise<Tokens> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #http: Http | null = null;

  constructor(
    readonly store: TokenStore,
    readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** Wires the transport in (the transport needs the credentials, so this comes second). */
  attach(http: Http): void {
    this.#http = http;
    if (this.store.get()) this.#schedule();
  }

  get user(): UserInfo | null {
    return this.store.get()?.user ?? null;
  }

  get tokens(): Tokens | null {
    return this.store.get();
  }

  async register(username: string, password: string): Promise<UserInfo> {
    const body = await this.#transport().request<{ user: UserInfo }>("POST", "/api/v1/auth/register", {
      body: { username, password },
      auth: false,
    });
    return body.user;
  }

  async login(username: string, password: string): Promise<UserInfo> {
    const body = await this.#transport().request<TokenBody>("POST", "/api/v1/auth/login", {
      body: { username, password },
      auth: false,
    });
    return this.#adopt(body).user;
  }

  /** Revokes the session on the server (every socket of it closes with 4001) and forgets it. */
  async logout(): Promise<void> {
    const tokens = this.store.get();
    this.#forget("logout");
    if (!tokens) return;
    try {
      await this.#transport().request<void>("POST", "/api/v1/auth/logout", {
        body: { refresh_token: tokens.refreshToken },
        auth: false,
      });
    } catch (err) {
      // Forgotten locally either way; a session the server could not revoke still expires.
      if (!(err instanceof SwitchboardError) || err.code !== "unauthorized") throw err;
    }
  }

  /** The access token, refreshed first when it is about to expire; null when logged out. */
  async accessToken(): Promise<string | null> {
    const tokens = this.store.get();
    if (!tokens) return null;
    const left = tokens.expiresAt - this.now();
    if (left > 1_000) return tokens.accessToken;
    try {
      return (await this.refresh()).accessToken;
    } catch (err) {
      if (err instanceof SwitchboardError && err.code === "unauthorized") return null;
      throw err;
    }
  }

  async refreshAfterRejection(token: string): Promise<boolean> {
    const current = this.store.get();
    if (!current) return false;
    // Someone else already refreshed past the token that was refused.
    if (current.accessToken !== token) return true;
    try {
      await this.refresh();
      return true;
    } catch {
      return false;
    }
  }

  /** Refreshes now (single-flight: concurrent callers share one refresh). */
  refresh(): Promise<Tokens> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** Called when the server closed a socket with 4001: the session is revoked. */
  revoked(): void {
    this.#forget("revoked");
  }

  /** Stops the refresh timer (the client is closing). */
  dispose(): void {
    clearTimeout(this.#timer);
  }

  async #refresh(): Promise<Tokens> {
    const before = this.store.get();
    if (!before) throw new SwitchboardError("unauthorized", "not logged in");
    try {
      const body = await this.#transport().request<TokenBody>("POST", "/api/v1/auth/refresh", {
        body: { refresh_token: before.refreshToken },
        auth: false,
      });
      return this.#adopt(body);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "unauthorized") throw err;
      const now = await this.#othersTokens(before.refreshToken);
      if (now) {
        // Another tab sharing the store refreshed first: its tokens are the session's.
        this.#schedule();
        this.emit("tokens", now);
        return now;
      }
      this.#forget("refresh_failed");
      throw err;
    }
  }

  /**
   * Tokens another tab stored after refreshing past `spent`. Its answer may land a moment after
   * the refusal this tab got for the same token, so look for a little while before giving up.
   */
  async #othersTokens(spent: string): Promise<Tokens | null> {
    const deadline = this.now() + 2_000;
    for (;;) {
      const now = this.store.get();
      if (!now) return null;
      if (now.refreshToken !== spent) return now;
      if (this.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  #adopt(body: TokenBody): Tokens {
    const tokens: Tokens = {
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      expiresAt: this.now() + body.expires_in * 1000,
      user: body.user,
    };
    this.store.set(tokens);
    this.#schedule();
    this.emit("tokens", tokens);
    return tokens;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    const tokens = this.store.get();
    if (!tokens) return;
    const lifetime = Math.max(0, tokens.expiresAt - this.now());
    const due = Math.max(0, lifetime - refreshMargin(lifetime));
    this.#timer = setTimeout(() => {
      this.refresh().catch(() => {
        // Transient failures (network, 503) are retried by the next use or the server's
        // `token_expiring`; a refused refresh has already ended the session.
        if (this.store.get()) this.#timer = setTimeout(() => this.#schedule(), 5_000);
      });
    }, due);
    // In Node, a pending refresh must not keep a finished program alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #forget(reason: AuthEvents["ended"]["reason"]): void {
    clearTimeout(this.#timer);
    const had = this.store.get() !== null;
    this.store.set(null);
    if (had) this.emit("ended", { reason });
  }

  #transport(): Http {
    if (!this.#http) throw new Error("Auth used before attach()");
    return this.#http;
  }
}
