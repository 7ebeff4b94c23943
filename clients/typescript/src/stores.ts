// Where the SDK keeps what must outlive a socket: the login (tokens) and, per channel, the last
// offset delivered. Both are pluggable; the defaults keep them in memory. The `storage` variants
// take any Web Storage (`localStorage`, `sessionStorage`) so a page reload resumes where it was.

import type { UserInfo } from "./types.js";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, Unix milliseconds (client clock). */
  expiresAt: number;
  user: UserInfo;
}

export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

export interface OffsetStore {
  get(key: string): number | undefined;
  set(key: string, offset: number): void;
  clear?(): void;
}

/** The subset of the Web Storage API the stores use. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class MemoryTokenStore implements TokenStore {
  #tokens: Tokens | null = null;
  get(): Tokens | null {
    return this.#tokens;
  }
  set(tokens: Tokens | null): void {
    this.#tokens = tokens;
  }
}

/**
 * Tokens in Web Storage, shared by the tabs of one origin: when two tabs refresh at the same
 * moment, the loser finds the winner's tokens here (the server's refresh grace, PROTOCOL.md).
 * Anything that can run script on the origin can read them; see the README on that trade-off.
 */
export class StorageTokenStore implements TokenStore {
  constructor(
    readonly storage: StorageLike,
    readonly key = "switchboard.tokens",
  ) {}
  get(): Tokens | null {
    const raw = this.storage.getItem(this.key);
    if (raw === null) return null;
    try {
      const t = JSON.parse(raw) as Partial<Tokens>;
      if (typeof t.accessToken !== "string" || typeof t.refreshToken !== "string" || typeof t.expiresAt !== "number" || !t.user) {
        return null;
      }
      return t as Tokens;
    } catch {
      return null;
    }
  }
  set(tokens: Tokens | null): void {
    if (tokens === null) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(tokens));
  }
}

export class MemoryOffsetStore implements OffsetStore {
  #offsets = new Map<string, number>();
  get(key: string): number | undefined {
    return this.#offsets.get(key);
  }
  set(key: string, offset: number): void {
    this.#offsets.set(key, offset);
  }
  clear(): void {
    this.#offsets.clear();
  }
}

/** Last offsets in Web Storage, one item per channel under `prefix`. */
export class StorageOffsetStore implements OffsetStore {
  constructor(
    readonly storage: StorageLike,
    readonly prefix = "switchboard.offset.",
  ) {}
  get(key: string): number | undefined {
    const raw = this.storage.getItem(this.prefix + key);
    const n = raw === null ? NaN : Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }
  set(key: string, offset: number): void {
    this.storage.setItem(this.prefix + key, String(offset));
  }
}
