// The REST transport: JSON in and out, the server's error body turned into a SwitchboardError,
// and one retry after a refresh when an access token was refused (it may have expired in flight).

import { SwitchboardError, asServerCode, codeOfStatus } from "./errors.js";

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  /** Send the bearer token (default true). */
  auth?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** What the transport needs from the login: a token to send, and a way to get a new one. */
export interface Credentials {
  accessToken(): Promise<string | null>;
  /** Called after a 401 on a request that carried `token`; true when a retry is worth it. */
  refreshAfterRejection(token: string): Promise<boolean>;
}

export class Http {
  constructor(
    readonly baseUrl: string,
    readonly fetchImpl: typeof fetch,
    readonly credentials: Credentials | null,
  ) {}

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return (await this.exchange<T>(method, path, opts)).body;
  }

  /** `request`, with the success status (201 and 200 tell "created" from "already there"). */
  async exchange<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const useAuth = opts.auth ?? true;
    const token = useAuth && this.credentials ? await this.credentials.accessToken() : null;
    let res = await this.#send(method, path, opts, token);
    if (res.status === 401 && token !== null && this.credentials) {
      if (await this.credentials.refreshAfterRejection(token)) {
        const fresh = await this.credentials.accessToken();
        res = await this.#send(method, path, opts, fresh);
      }
    }
    return { status: res.status, body: await this.#read<T>(res) };
  }

  async #send(method: string, path: string, opts: RequestOptions, token: string | null): Promise<Response> {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { accept: "application/json", ...opts.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    try {
      return await this.fetchImpl(url, { method, headers, body, signal: opts.signal });
    } catch (err) {
      throw new SwitchboardError("network", `${method} ${url.pathname} failed: ${String(err)}`, { cause: err });
    }
  }

  async #read<T>(res: Response): Promise<T> {
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      if (res.ok) throw new SwitchboardError("protocol", `answer is not JSON (HTTP ${res.status})`, { status: res.status });
    }
    if (res.ok) return body as T;
    const e = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof e?.code === "string" ? asServerCode(e.code) : codeOfStatus(res.status);
    const message = typeof e?.message === "string" ? e.message : `HTTP ${res.status}`;
    throw new SwitchboardError(code, message, { status: res.status });
  }
}
