// src/dom.ts
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.testid) el.dataset.testid = props.testid;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === "style" || name.startsWith("on")) throw new Error(`no inline ${name}: use classes and listeners`);
    if (value === void 0 || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, handler] of Object.entries(props.on ?? {})) {
    el.addEventListener(name, handler);
  }
  if (props.text !== void 0) el.textContent = props.text;
  append(el, ...children);
  return el;
}
function append(parent, ...children) {
  for (const child of children) {
    if (child === null || child === void 0 || child === false) continue;
    parent.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
}
function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, ...children);
}
function clock(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  const today = /* @__PURE__ */ new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}
function textOf(data) {
  if (typeof data === "string") return data;
  if (data && typeof data === "object" && typeof data.text === "string") {
    return data.text;
  }
  try {
    return JSON.stringify(data) ?? "";
  } catch {
    return "";
  }
}
var MENTION = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]*[A-Za-z0-9_-])/g;
function withMentions(text2, me) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const m of text2.matchAll(MENTION)) {
    const start = m.index + m[1].length;
    const name = m[2];
    out.append(text2.slice(at, start));
    const isMe = me !== void 0 && name.toLowerCase() === me.toLowerCase();
    out.append(h("span", { class: isMe ? "mention me" : "mention", text: `@${name}` }));
    at = start + 1 + name.length;
  }
  out.append(text2.slice(at));
  return out;
}
function describe(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}
var SVG = "http://www.w3.org/2000/svg";
var ICONS = {
  // 24×24 outlines, drawn with the text colour (no icon font: the CSP allows only this origin).
  bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  home: "M3 11l9-8 9 8M5 9v12h5v-6h4v6h5V9"
};
function icon(name, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

// ../typescript/src/api.ts
var seg = encodeURIComponent;
var Api = class {
  constructor(http) {
    this.http = http;
  }
  http;
  rooms = {
    create: async (room) => (await this.http.request("POST", "/api/v1/rooms", { body: room })).room,
    list: (q = {}) => this.http.request("GET", "/api/v1/rooms", {
      query: q
    }),
    /** Moves the caller's read marker forward; the answer has the marker and what is left unread. */
    markRead: async (name, offset) => (await this.http.request(
      "POST",
      `/api/v1/rooms/${seg(name)}/read`,
      { body: { offset } }
    )).read,
    /** Read receipts: how far each member has read (rooms up to the server's member threshold). */
    readState: (name, q = {}) => this.http.request(
      "GET",
      `/api/v1/rooms/${seg(name)}/read_state`,
      { query: q }
    ),
    /**
     * Edits the caller's own message at `offset` (`data`: its new version); resolves with the
     * edit's own offset (an `edit` message in the room's channel).
     */
    editMessage: async (name, offset, data) => (await this.http.request("PATCH", `/api/v1/rooms/${seg(name)}/messages/${offset}`, {
      body: { data }
    })).offset,
    /** Deletes the message at `offset` (its author, or the room's owner or an admin); resolves with the delete's offset. */
    deleteMessage: async (name, offset) => (await this.http.request("DELETE", `/api/v1/rooms/${seg(name)}/messages/${offset}`)).offset,
    /**
     * Adds the caller's `emoji` to the message at `offset`: the `reaction` message's offset, or
     * null when the caller had that reaction already (nothing stored).
     */
    react: async (name, offset, emoji) => (await this.http.request("POST", `/api/v1/rooms/${seg(name)}/messages/${offset}/reactions`, {
      body: { emoji }
    })).offset ?? null,
    /** Takes the caller's `emoji` off the message at `offset` (`not_found` when it was not on); resolves with the change's offset. */
    unreact: async (name, offset, emoji) => (await this.http.request(
      "DELETE",
      `/api/v1/rooms/${seg(name)}/messages/${offset}/reactions/${seg(emoji)}`
    )).offset,
    get: async (name) => (await this.http.request("GET", `/api/v1/rooms/${seg(name)}`)).room,
    /** Owner only: `title` (null clears it) and `archived` (read-only). */
    update: async (name, change) => (await this.http.request("PATCH", `/api/v1/rooms/${seg(name)}`, { body: change })).room,
    /** Owner only: the messages are deleted, the name stays taken. */
    delete: (name) => this.http.request("DELETE", `/api/v1/rooms/${seg(name)}`),
    members: (name, q = {}) => this.http.request(
      "GET",
      `/api/v1/rooms/${seg(name)}/members`,
      { query: q }
    ),
    /** Adds a member (owners and admins; in a public room, anyone adds themselves). */
    addMember: async (name, who) => (await this.http.request("POST", `/api/v1/rooms/${seg(name)}/members`, { body: who })).member,
    removeMember: (name, userId) => this.http.request("DELETE", `/api/v1/rooms/${seg(name)}/members/${seg(userId)}`),
    leave: (name) => this.http.request("POST", `/api/v1/rooms/${seg(name)}/leave`),
    setRole: async (name, userId, role) => (await this.http.request("PATCH", `/api/v1/rooms/${seg(name)}/members/${seg(userId)}`, {
      body: { role }
    })).member,
    transferOwnership: async (name, userId) => (await this.http.request("POST", `/api/v1/rooms/${seg(name)}/owner`, { body: { user: userId } })).member,
    ban: (name, userId) => this.http.request("POST", `/api/v1/rooms/${seg(name)}/bans`, { body: { user: userId } }),
    unban: (name, userId) => this.http.request("DELETE", `/api/v1/rooms/${seg(name)}/bans/${seg(userId)}`),
    /** The user may read but not publish for `seconds`. */
    timeout: async (name, userId, seconds) => (await this.http.request("POST", `/api/v1/rooms/${seg(name)}/timeouts`, {
      body: { user: userId, seconds }
    })).timeout,
    liftTimeout: (name, userId) => this.http.request("DELETE", `/api/v1/rooms/${seg(name)}/timeouts/${seg(userId)}`),
    audit: (name, q = {}) => this.http.request("GET", `/api/v1/rooms/${seg(name)}/audit`, {
      query: { ...q }
    })
  };
  /** The one private conversation with another user (created on first use, from either side). */
  dms = {
    open: async (userId) => (await this.http.request("POST", "/api/v1/dms", {
      body: { user: userId }
    })).dm
  };
  /** Blocked users: no direct messages either way, no notifications from them. */
  blocks = {
    add: (userId) => this.http.request("POST", "/api/v1/blocks", { body: { user: userId } }),
    remove: (userId) => this.http.request("DELETE", `/api/v1/blocks/${seg(userId)}`),
    list: (q = {}) => this.http.request("GET", "/api/v1/blocks", { query: q })
  };
  channels = {
    history: async (channel, q = {}) => (await this.http.request("GET", `/api/v1/channels/${seg(channel)}/messages`, { query: { ...q } })).messages,
    publish: async (channel, data, opts = {}) => (await this.http.request("POST", `/api/v1/channels/${seg(channel)}/messages`, {
      body: { data },
      headers: opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {}
    })).offset
  };
  users = {
    byUsername: async (username) => (await this.http.request("GET", "/api/v1/users", { query: { username } })).user,
    get: async (id) => (await this.http.request("GET", `/api/v1/users/${seg(id)}`)).user,
    /** True when the follow is new (the user gets a `follow` notification). */
    follow: async (id) => (await this.http.exchange("POST", `/api/v1/users/${seg(id)}/follow`)).status === 201,
    unfollow: (id) => this.http.request("DELETE", `/api/v1/users/${seg(id)}/follow`),
    followers: (id, q = {}) => this.http.request("GET", `/api/v1/users/${seg(id)}/followers`, {
      query: { ...q }
    }),
    following: (id, q = {}) => this.http.request("GET", `/api/v1/users/${seg(id)}/following`, {
      query: { ...q }
    }),
    posts: (id, q = {}) => this.http.request("GET", `/api/v1/users/${seg(id)}/posts`, {
      query: { ...q }
    })
  };
  posts = {
    create: async (data) => (await this.http.request("POST", "/api/v1/posts", { body: { data } })).post,
    get: async (id) => (await this.http.request("GET", `/api/v1/posts/${seg(id)}`)).post,
    reply: async (id, data) => (await this.http.request("POST", `/api/v1/posts/${seg(id)}/replies`, { body: { data } })).post,
    replies: (id, q = {}) => this.http.request("GET", `/api/v1/posts/${seg(id)}/replies`, {
      query: { ...q }
    }),
    /** True when the reaction is new. */
    react: async (id, emoji) => (await this.http.exchange("POST", `/api/v1/posts/${seg(id)}/reactions`, { body: { emoji } })).status === 201,
    unreact: (id, emoji) => this.http.request("DELETE", `/api/v1/posts/${seg(id)}/reactions`, { body: { emoji } })
  };
  /** The caller's home feed, newest first. */
  feed = (q = {}) => this.http.request("GET", "/api/v1/feed", { query: { ...q } });
  notifications = {
    list: (q = {}) => this.http.request("GET", "/api/v1/notifications", {
      query: { ...q }
    }),
    unreadCount: async () => (await this.http.request("GET", "/api/v1/notifications/unread_count")).unread_count,
    markRead: (which) => this.http.request("POST", "/api/v1/notifications/read", { body: which })
  };
  mutes = {
    /** True when the mute is new. */
    add: async (target) => (await this.http.exchange("POST", "/api/v1/mutes", { body: target })).status === 201,
    remove: (target) => this.http.request("DELETE", "/api/v1/mutes", { body: target }),
    list: async () => (await this.http.request("GET", "/api/v1/mutes")).mutes
  };
};

// ../typescript/src/emitter.ts
var Emitter = class {
  #listeners = /* @__PURE__ */ new Map();
  /** Adds a listener; returns the function that removes it. */
  on(name, listener) {
    let set = this.#listeners.get(name);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener);
    return () => this.off(name, listener);
  }
  off(name, listener) {
    this.#listeners.get(name)?.delete(listener);
  }
  emit(name, event) {
    for (const listener of [...this.#listeners.get(name) ?? []]) {
      try {
        listener(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
};

// ../typescript/src/errors.ts
var SERVER_CODES = /* @__PURE__ */ new Set([
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "rate_limited",
  "too_large",
  "unavailable",
  "conflict",
  "unprocessable",
  "method_not_allowed",
  "internal"
]);
var SwitchboardError = class _SwitchboardError extends Error {
  name = "SwitchboardError";
  code;
  /** The HTTP status, for errors from the REST API. */
  status;
  /** The channel a subscription ended on, for errors that end one. */
  channel;
  constructor(code, message, opts = {}) {
    super(message, opts.cause === void 0 ? void 0 : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
    this.channel = opts.channel;
  }
  /** True for failures worth retrying later (the server said so, or the network failed). */
  get retryable() {
    return this.code === "rate_limited" || this.code === "unavailable" || this.code === "timeout" || this.code === "disconnected" || this.code === "network";
  }
  /** An `error` frame's code and message. Unknown codes (a newer server) become `bad_request`. */
  static fromFrame(frame) {
    return new _SwitchboardError(asServerCode(frame.code), frame.message, { channel: frame.channel });
  }
};
function asServerCode(code) {
  return SERVER_CODES.has(code) ? code : "bad_request";
}
function codeOfStatus(status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "too_large";
    case 422:
      return "unprocessable";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "bad_request";
  }
}

// ../typescript/src/auth.ts
function refreshMargin(lifetimeMs) {
  return Math.min(6e4, lifetimeMs / 2);
}
var Auth = class extends Emitter {
  constructor(store, now = Date.now) {
    super();
    this.store = store;
    this.now = now;
  }
  store;
  now;
  #refreshing = null;
  #timer;
  #http = null;
  /** Wires the transport in (the transport needs the credentials, so this comes second). */
  attach(http) {
    this.#http = http;
    if (this.store.get()) this.#schedule();
  }
  get user() {
    return this.store.get()?.user ?? null;
  }
  get tokens() {
    return this.store.get();
  }
  async register(username, password) {
    const body = await this.#transport().request("POST", "/api/v1/auth/register", {
      body: { username, password },
      auth: false
    });
    return body.user;
  }
  async login(username, password) {
    const body = await this.#transport().request("POST", "/api/v1/auth/login", {
      body: { username, password },
      auth: false
    });
    return this.#adopt(body).user;
  }
  /** Revokes the session on the server (every socket of it closes with 4001) and forgets it. */
  async logout() {
    const tokens = this.store.get();
    this.#forget("logout");
    if (!tokens) return;
    try {
      await this.#transport().request("POST", "/api/v1/auth/logout", {
        body: { refresh_token: tokens.refreshToken },
        auth: false
      });
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "unauthorized") throw err;
    }
  }
  /** The access token, refreshed first when it is about to expire; null when logged out. */
  async accessToken() {
    const tokens = this.store.get();
    if (!tokens) return null;
    const left = tokens.expiresAt - this.now();
    if (left > 1e3) return tokens.accessToken;
    try {
      return (await this.refresh()).accessToken;
    } catch (err) {
      if (err instanceof SwitchboardError && err.code === "unauthorized") return null;
      throw err;
    }
  }
  async refreshAfterRejection(token) {
    const current = this.store.get();
    if (!current) return false;
    if (current.accessToken !== token) return true;
    try {
      await this.refresh();
      return true;
    } catch {
      return false;
    }
  }
  /** Refreshes now (single-flight: concurrent callers share one refresh). */
  refresh() {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }
  /** Called when the server closed a socket with 4001: the session is revoked. */
  revoked() {
    this.#forget("revoked");
  }
  /** Stops the refresh timer (the client is closing). */
  dispose() {
    clearTimeout(this.#timer);
  }
  async #refresh() {
    const before = this.store.get();
    if (!before) throw new SwitchboardError("unauthorized", "not logged in");
    try {
      const body = await this.#transport().request("POST", "/api/v1/auth/refresh", {
        body: { refresh_token: before.refreshToken },
        auth: false
      });
      return this.#adopt(body);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "unauthorized") throw err;
      const now = await this.#othersTokens(before.refreshToken);
      if (now) {
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
  async #othersTokens(spent) {
    const deadline = this.now() + 2e3;
    for (; ; ) {
      const now = this.store.get();
      if (!now) return null;
      if (now.refreshToken !== spent) return now;
      if (this.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  #adopt(body) {
    const tokens = {
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      expiresAt: this.now() + body.expires_in * 1e3,
      user: body.user
    };
    this.store.set(tokens);
    this.#schedule();
    this.emit("tokens", tokens);
    return tokens;
  }
  #schedule() {
    clearTimeout(this.#timer);
    const tokens = this.store.get();
    if (!tokens) return;
    const lifetime = Math.max(0, tokens.expiresAt - this.now());
    const due = Math.max(0, lifetime - refreshMargin(lifetime));
    this.#timer = setTimeout(() => {
      this.refresh().catch(() => {
        if (this.store.get()) this.#timer = setTimeout(() => this.#schedule(), 5e3);
      });
    }, due);
    this.#timer.unref?.();
  }
  #forget(reason) {
    clearTimeout(this.#timer);
    const had = this.store.get() !== null;
    this.store.set(null);
    if (had) this.emit("ended", { reason });
  }
  #transport() {
    if (!this.#http) throw new Error("Auth used before attach()");
    return this.#http;
  }
};

// ../typescript/src/codec.ts
var text = new TextDecoder();
var jsonCodec = {
  subprotocol: "switchboard.v1.json",
  encode: (frame) => JSON.stringify(frame),
  decode(data) {
    const value = JSON.parse(typeof data === "string" ? data : text.decode(data));
    return asFrame(value);
  }
};
function asFrame(value) {
  if (typeof value !== "object" || value === null || typeof value.type !== "string") {
    throw new TypeError("not a Switchboard frame");
  }
  return value;
}

// ../typescript/src/backoff.ts
var Backoff = class {
  #initial;
  #max;
  #factor;
  #attempt = 0;
  #random;
  constructor(opts = {}) {
    this.#random = opts.random ?? Math.random;
    this.#initial = opts.initialMs ?? 500;
    this.#max = opts.maxMs ?? 3e4;
    this.#factor = opts.factor ?? 2;
  }
  get attempt() {
    return this.#attempt;
  }
  /** The next delay, and one more attempt counted. */
  next() {
    const cap = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 64);
    return Math.floor(this.#random() * cap);
  }
  reset() {
    this.#attempt = 0;
  }
};

// ../typescript/src/connection.ts
var REVOKED = 4001;
var TOKEN_EXPIRED = 4002;
var AUTH_REFUSED = 1008;
var Connection = class extends Emitter {
  constructor(url, codec, auth, WebSocketImpl, opts = {}) {
    super();
    this.url = url;
    this.codec = codec;
    this.auth = auth;
    this.WebSocketImpl = WebSocketImpl;
    this.#backoff = new Backoff(opts.backoff);
    this.#opts = {
      pingIntervalMs: opts.pingIntervalMs ?? 25e3,
      pongTimeoutMs: opts.pongTimeoutMs ?? 1e4,
      requestTimeoutMs: opts.requestTimeoutMs ?? 15e3,
      stableAfterMs: opts.stableAfterMs ?? 1e4
    };
    this.#unlisten.push(
      auth.on("tokens", (t) => {
        if (this.#authenticated) {
          this.request({ type: "auth", token: t.accessToken }).catch((err) => {
            if (err instanceof SwitchboardError) this.emit("error", err);
          });
        }
      })
    );
    this.#watchEnvironment();
  }
  url;
  codec;
  auth;
  WebSocketImpl;
  #state = "idle";
  #ws = null;
  #authenticated = false;
  #nextId = 1;
  #pending = /* @__PURE__ */ new Map();
  #backoff;
  #retryTimer;
  #watchdog;
  #lastRx = 0;
  #openedAt = 0;
  #pinging = false;
  #serverAfterMs;
  #wanted = false;
  #opts;
  #unlisten = [];
  get state() {
    return this.#state;
  }
  /** True when requests can be sent now. */
  get ready() {
    return this.#authenticated;
  }
  /** Starts connecting (and keeps reconnecting) until `close()`. Idempotent. */
  connect() {
    this.#wanted = true;
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#state === "disconnected") {
      this.#retryNow();
      return;
    }
    void this.#open();
  }
  /** Closes the socket: pending requests reject with `closed`, nothing reconnects until `connect()`. */
  close() {
    this.#wanted = false;
    clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#teardown({ code: 1e3, reason: "closed by the client" }, "closed");
    ws?.close(1e3);
  }
  /** `close()`, and lets go of the page's events and the login's. */
  dispose() {
    this.close();
    for (const off of this.#unlisten.splice(0)) off();
  }
  /**
   * Sends a request and resolves with its `ack`; an `error` reply rejects with its code. Only on
   * an authenticated socket (see `ready`); `lost` decides what happens when the socket dies first.
   */
  request(frame, opts = {}) {
    if (!this.#ws || !this.#authenticated && frame.type !== "auth") {
      return Promise.reject(new SwitchboardError("disconnected", "not connected"));
    }
    return this.#send(this.#ws, frame, opts);
  }
  /**
   * Sends a frame that asks for no reply (a `typing` signal without `id`); false when there is
   * no authenticated socket to send it on (a signal is never queued: late, it is wrong).
   */
  signal(frame) {
    if (!this.#ws || !this.#authenticated) return false;
    try {
      this.#ws.send(this.codec.encode(frame));
      return true;
    } catch {
      return false;
    }
  }
  #send(ws, frame, opts) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SwitchboardError("timeout", `no reply to ${frame.type} within ${opts.timeoutMs ?? this.#opts.requestTimeoutMs} ms`));
      }, opts.timeoutMs ?? this.#opts.requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, lost: opts.lost, onAck: opts.onAck, timer });
      try {
        ws.send(this.codec.encode({ ...frame, id }));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new SwitchboardError("disconnected", `send failed: ${String(err)}`, { cause: err }));
      }
    });
  }
  async #open() {
    this.#setState("connecting");
    let token;
    try {
      token = await this.auth.accessToken();
    } catch (err) {
      this.#scheduleRetry({ code: 1006, reason: `refresh failed: ${String(err)}` });
      return;
    }
    if (!this.#wanted) {
      this.#setState("closed");
      return;
    }
    if (token === null) {
      this.#setState("closed", { close: { code: AUTH_REFUSED, reason: "not logged in" } });
      return;
    }
    let ws;
    try {
      ws = new this.WebSocketImpl(this.url, [this.codec.subprotocol]);
    } catch (err) {
      this.#scheduleRetry({ code: 1006, reason: String(err) });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#serverAfterMs = void 0;
    ws.onopen = () => {
      this.#lastRx = Date.now();
      this.#watch();
      this.#send(ws, { type: "auth", token }, {}).then(() => {
        if (this.#ws !== ws) return;
        this.#authenticated = true;
        this.#openedAt = Date.now();
        this.#setState("connected");
        this.emit("open", void 0);
      }).catch(() => {
      });
    };
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) return;
      this.#lastRx = Date.now();
      this.#pinging = false;
      let frame;
      try {
        frame = this.codec.decode(ev.data);
      } catch (err) {
        this.emit("error", new SwitchboardError("protocol", `undecodable frame: ${String(err)}`));
        return;
      }
      this.#dispatch(frame);
    };
    ws.onclose = (ev) => {
      if (this.#ws === ws) this.#closed({ code: ev.code, reason: ev.reason });
    };
    ws.onerror = () => {
      setTimeout(() => {
        if (this.#ws === ws) this.#closed({ code: 1006, reason: "the connection failed" });
      }, 250);
    };
    const opening = setTimeout(() => {
      if (this.#ws === ws && !this.#authenticated) this.#dead("no answer to the opening handshake");
    }, this.#opts.requestTimeoutMs);
    opening.unref?.();
  }
  #dispatch(frame) {
    switch (frame.type) {
      case "ack": {
        const p = this.#pending.get(frame.id);
        if (!p) return;
        this.#pending.delete(frame.id);
        clearTimeout(p.timer);
        p.onAck?.(frame);
        p.resolve(frame);
        return;
      }
      case "error": {
        const p = frame.id === void 0 ? void 0 : this.#pending.get(frame.id);
        if (p && frame.id !== void 0) {
          this.#pending.delete(frame.id);
          clearTimeout(p.timer);
          p.reject(SwitchboardError.fromFrame(frame));
        } else if (frame.channel !== void 0) {
          this.emit("frame", frame);
        } else {
          this.emit("error", SwitchboardError.fromFrame(frame));
        }
        return;
      }
      case "reconnect":
        this.#serverAfterMs = frame.after_ms;
        return;
      case "token_expiring":
        this.auth.refresh().catch((err) => {
          if (err instanceof SwitchboardError) this.emit("error", err);
        });
        return;
      default:
        this.emit("frame", frame);
    }
  }
  #closed(close) {
    if (close.code === REVOKED) {
      this.#teardown(close, "closed");
      this.auth.revoked();
      return;
    }
    if (close.code === AUTH_REFUSED && !this.#authenticated) {
      this.#teardown(close, "disconnected");
      this.auth.refresh().then(() => this.#scheduleRetry(close)).catch((err) => {
        if (err instanceof SwitchboardError && err.code === "unauthorized") this.#setState("closed", { close });
        else this.#scheduleRetry(close);
      });
      return;
    }
    if (close.code === TOKEN_EXPIRED) {
      this.#teardown(close, "disconnected");
      this.auth.refresh().then(
        () => this.#scheduleRetry(close),
        () => this.#scheduleRetry(close)
      );
      return;
    }
    this.#scheduleRetry(close);
  }
  #scheduleRetry(close) {
    const stable = this.#authenticated && Date.now() - this.#openedAt >= this.#opts.stableAfterMs;
    this.#teardown(close, null);
    if (!this.#wanted) {
      this.#setState("closed", { close });
      return;
    }
    if (stable) this.#backoff.reset();
    const delay = Math.max(this.#serverAfterMs ?? 0, this.#backoff.next());
    this.#serverAfterMs = void 0;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#open(), delay);
    this.#setState("disconnected", { close, retryInMs: delay });
  }
  #retryNow() {
    if (this.#state !== "disconnected" || !this.#wanted) return;
    clearTimeout(this.#retryTimer);
    void this.#open();
  }
  /** Drops the socket and settles what waited on it; `next` is the state to enter, if any. */
  #teardown(close, next) {
    clearTimeout(this.#watchdog);
    const ws = this.#ws;
    this.#ws = null;
    this.#authenticated = false;
    this.#pinging = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    const code = next === "closed" && !this.#wanted ? "closed" : "disconnected";
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      if (p.lost) p.lost(close);
      else p.reject(new SwitchboardError(code, `connection closed (${close.code} ${close.reason})`));
    }
    if (next) this.#setState(next, { close });
  }
  /** Kills a socket that has gone quiet: the close handshake would wait on the dead path too. */
  #dead(reason) {
    const ws = this.#ws;
    this.#scheduleRetry({ code: 1006, reason });
    try {
      ws?.close(1e3);
    } catch {
    }
  }
  #watch() {
    clearTimeout(this.#watchdog);
    const { pingIntervalMs, pongTimeoutMs } = this.#opts;
    const tick = Math.max(250, Math.min(pingIntervalMs, pongTimeoutMs) / 2);
    this.#watchdog = setTimeout(() => {
      const ws = this.#ws;
      if (!ws) return;
      const quiet = Date.now() - this.#lastRx;
      if (quiet >= pingIntervalMs + pongTimeoutMs) {
        this.#dead(`nothing received for ${quiet} ms`);
        return;
      }
      if (quiet >= pingIntervalMs && !this.#pinging && this.#authenticated) {
        this.#pinging = true;
        this.#send(ws, { type: "ping" }, { timeoutMs: pongTimeoutMs }).catch(() => void 0);
      }
      this.#watch();
    }, tick);
    this.#watchdog.unref?.();
  }
  /** Browsers: reconnect at once when the tab comes back or the network returns. */
  #watchEnvironment() {
    const doc = globalThis.document;
    const win = globalThis.window;
    if (doc?.addEventListener) {
      const onVisible = () => {
        if (doc.visibilityState !== "visible") return;
        if (this.#state === "disconnected") this.#retryNow();
        else if (this.#authenticated && this.#ws && !this.#pinging) {
          this.#pinging = true;
          this.#send(this.#ws, { type: "ping" }, { timeoutMs: this.#opts.pongTimeoutMs }).catch(() => {
            if (this.#pinging) this.#dead("no answer to a ping after the tab became visible");
          });
        }
      };
      doc.addEventListener("visibilitychange", onVisible);
      this.#unlisten.push(() => doc.removeEventListener("visibilitychange", onVisible));
    }
    if (win?.addEventListener) {
      const onOnline = () => this.#retryNow();
      win.addEventListener("online", onOnline);
      this.#unlisten.push(() => win.removeEventListener("online", onOnline));
    }
  }
  #setState(state, extra = {}) {
    if (state === this.#state && state !== "disconnected") return;
    const previous = this.#state;
    this.#state = state;
    this.emit("state", { state, previous, ...extra });
  }
};

// ../typescript/src/http.ts
var Http = class {
  constructor(baseUrl, fetchImpl, credentials) {
    this.baseUrl = baseUrl;
    this.fetchImpl = fetchImpl;
    this.credentials = credentials;
  }
  baseUrl;
  fetchImpl;
  credentials;
  async request(method, path, opts = {}) {
    return (await this.exchange(method, path, opts)).body;
  }
  /** `request`, with the success status (201 and 200 tell "created" from "already there"). */
  async exchange(method, path, opts = {}) {
    const useAuth = opts.auth ?? true;
    const token = useAuth && this.credentials ? await this.credentials.accessToken() : null;
    let res = await this.#send(method, path, opts, token);
    if (res.status === 401 && token !== null && this.credentials) {
      if (await this.credentials.refreshAfterRejection(token)) {
        const fresh = await this.credentials.accessToken();
        res = await this.#send(method, path, opts, fresh);
      }
    }
    return { status: res.status, body: await this.#read(res) };
  }
  async #send(method, path, opts, token) {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== void 0 && v !== null) url.searchParams.set(k, String(v));
    }
    const headers = { accept: "application/json", ...opts.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    let body;
    if (opts.body !== void 0) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    try {
      return await this.fetchImpl(url, { method, headers, body, signal: opts.signal });
    } catch (err) {
      throw new SwitchboardError("network", `${method} ${url.pathname} failed: ${String(err)}`, { cause: err });
    }
  }
  async #read(res) {
    if (res.status === 204) return void 0;
    const text2 = await res.text();
    let body;
    try {
      body = text2 === "" ? void 0 : JSON.parse(text2);
    } catch {
      if (res.ok) throw new SwitchboardError("protocol", `answer is not JSON (HTTP ${res.status})`, { status: res.status });
    }
    if (res.ok) return body;
    const e = body?.error;
    const code = typeof e?.code === "string" ? asServerCode(e.code) : codeOfStatus(res.status);
    const message = typeof e?.message === "string" ? e.message : `HTTP ${res.status}`;
    throw new SwitchboardError(code, message, { status: res.status });
  }
};

// ../typescript/src/outbox.ts
var Outbox = class {
  constructor(limit, maxFrameBytes, measure) {
    this.limit = limit;
    this.maxFrameBytes = maxFrameBytes;
    this.measure = measure;
  }
  limit;
  maxFrameBytes;
  measure;
  #entries = [];
  get size() {
    return this.#entries.length;
  }
  add(channel, data, key) {
    if (this.#entries.length >= this.limit) {
      return Promise.reject(new SwitchboardError("outbox_full", `${this.limit} publishes are already waiting`));
    }
    const size = this.measure(channel, data, key);
    if (size > this.maxFrameBytes) {
      return Promise.reject(new SwitchboardError("too_large", `the publish frame is ${size} bytes, the limit ${this.maxFrameBytes}`));
    }
    return new Promise((resolve, reject) => {
      this.#entries.push({ channel, data, key, inFlight: false, resolve, reject });
    });
  }
  /** Sends every entry not in flight, in order, on a ready connection. */
  flush(connection) {
    for (const entry of this.#entries) {
      if (entry.inFlight || !connection.ready) continue;
      entry.inFlight = true;
      connection.request(
        { type: "publish", channel: entry.channel, data: entry.data, idempotency_key: entry.key },
        {
          lost: (close) => {
            if (close.code === 1009) {
              this.#remove(entry);
              entry.reject(new SwitchboardError("too_large", "the publish is larger than the server's frame limit"));
            } else entry.inFlight = false;
          }
        }
      ).then(
        (ack) => {
          this.#remove(entry);
          entry.resolve(ack.offset ?? 0);
        },
        (err) => {
          this.#remove(entry);
          entry.reject(err instanceof SwitchboardError ? err : new SwitchboardError("protocol", String(err)));
        }
      );
    }
  }
  /** Rejects everything waiting (the client closed, or the login ended). */
  rejectAll(err) {
    for (const entry of this.#entries.splice(0)) entry.reject(err);
  }
  #remove(entry) {
    const i = this.#entries.indexOf(entry);
    if (i >= 0) this.#entries.splice(i, 1);
  }
};

// ../typescript/src/stores.ts
var MemoryTokenStore = class {
  #tokens = null;
  get() {
    return this.#tokens;
  }
  set(tokens) {
    this.#tokens = tokens;
  }
};
var StorageTokenStore = class {
  constructor(storage, key = "switchboard.tokens") {
    this.storage = storage;
    this.key = key;
  }
  storage;
  key;
  get() {
    const raw = this.storage.getItem(this.key);
    if (raw === null) return null;
    try {
      const t = JSON.parse(raw);
      if (typeof t.accessToken !== "string" || typeof t.refreshToken !== "string" || typeof t.expiresAt !== "number" || !t.user) {
        return null;
      }
      return t;
    } catch {
      return null;
    }
  }
  set(tokens) {
    if (tokens === null) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(tokens));
  }
};
var MemoryOffsetStore = class {
  #offsets = /* @__PURE__ */ new Map();
  get(key) {
    return this.#offsets.get(key);
  }
  set(key, offset) {
    this.#offsets.set(key, offset);
  }
  clear() {
    this.#offsets.clear();
  }
};
var StorageOffsetStore = class {
  constructor(storage, prefix = "switchboard.offset.") {
    this.storage = storage;
    this.prefix = prefix;
  }
  storage;
  prefix;
  get(key) {
    const raw = this.storage.getItem(this.prefix + key);
    const n = raw === null ? NaN : Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : void 0;
  }
  set(key, offset) {
    this.storage.setItem(this.prefix + key, String(offset));
  }
};

// ../typescript/src/subscription.ts
var FILL_MAX = 200;
var HOLD_MAX = 1e3;
var Subscription = class extends Emitter {
  constructor(channel, host, opts = {}) {
    super();
    this.channel = channel;
    this.host = host;
    this.#iteratorLimit = opts.iteratorLimit ?? 1e4;
    const stored = opts.resume === false ? void 0 : host.offsets.get(host.offsetKey(channel));
    this.#last = opts.since ?? stored;
    if (opts.onMessage) this.on("message", opts.onMessage);
    if (opts.onJoin) this.on("join", opts.onJoin);
    if (opts.onLeave) this.on("leave", opts.onLeave);
    if (opts.onTyping) this.on("typing", opts.onTyping);
    if (opts.onRead) this.on("read", opts.onRead);
    if (opts.onError) this.on("error", opts.onError);
    this.#ready = new Promise((resolve, reject) => {
      this.#markReady = resolve;
      this.#failReady = reject;
    });
    this.#ready.catch(() => void 0);
  }
  channel;
  host;
  #state = "pending";
  #last;
  #target = 0;
  #catchingUp = false;
  #held = /* @__PURE__ */ new Map();
  #filling = false;
  #generation = 0;
  #error = null;
  #queue = [];
  #waiters = [];
  #iterating = false;
  #typing = /* @__PURE__ */ new Map();
  #reads = /* @__PURE__ */ new Map();
  #iteratorLimit;
  #ready;
  #markReady;
  #failReady;
  get state() {
    return this.#state;
  }
  /** The last offset delivered (or the `since` it started from). */
  get lastOffset() {
    return this.#last;
  }
  /** Resolves at the first subscribe `ack`; rejects if the server refuses the subscription. */
  get ready() {
    return this.#ready;
  }
  /** Ends the subscription (also on the server, when connected). */
  unsubscribe() {
    if (this.#state === "ended") return;
    this.#end(null);
    if (this.host.connection.ready) {
      this.host.connection.request({ type: "unsubscribe", channel: this.channel }).catch(() => void 0);
    }
  }
  /** (Re)subscribes on the current socket, from the last offset delivered. */
  start() {
    if (this.#state === "ended" || !this.host.connection.ready) return;
    const generation = ++this.#generation;
    this.#state = "subscribing";
    this.#held.clear();
    const since = this.#last;
    this.host.connection.request(
      { type: "subscribe", channel: this.channel, since },
      // Synchronously at the ack, before any later frame of the socket is handled: the replay
      // and live messages follow the ack at once.
      { onAck: (ack) => generation === this.#generation && this.#subscribed(ack, since) }
    ).catch((err) => {
      if (generation !== this.#generation || !(err instanceof SwitchboardError)) return;
      if (err.code === "disconnected" || err.code === "closed") return;
      if (err.code === "timeout" || err.code === "rate_limited" || err.code === "unavailable") {
        this.#state = "pending";
        setTimeout(() => this.#state === "pending" && this.start(), 1e3);
        return;
      }
      this.#end(err);
    });
  }
  /** The socket went away; `start()` resumes on the next one. */
  suspend() {
    if (this.#state === "ended") return;
    this.#state = "pending";
    this.#generation++;
    this.#held.clear();
  }
  /** A frame of this channel from the socket. */
  deliver(message) {
    if (this.#state === "ended" || this.#state === "pending") return;
    const last = this.#last;
    if (last === void 0 || this.#state === "subscribing") {
      this.#held.set(message.offset, message);
      return;
    }
    if (message.offset <= last) return;
    if (message.offset === last + 1) {
      this.#accept(message);
      this.#drain();
      return;
    }
    this.#held.set(message.offset, message);
    if (this.#held.size > HOLD_MAX) {
      this.start();
      return;
    }
    void this.#fill();
  }
  presence(kind, user) {
    if (this.#state !== "ended") this.emit(kind, user);
  }
  /** Who else is typing now. */
  get typingUsers() {
    return [...this.#typing.values()].map((t) => t.user);
  }
  /** A `typing` frame for this channel. */
  typingSignal(frame) {
    if (this.#state === "ended" || frame.user.id === this.host.selfId()) return;
    const known = this.#typing.get(frame.user.id);
    if (known) clearTimeout(known.timer);
    if (frame.typing) {
      const timer = setTimeout(() => {
        this.#typing.delete(frame.user.id);
        this.emit("typing", this.typingUsers);
      }, frame.ttl_ms);
      timer.unref?.();
      this.#typing.set(frame.user.id, { user: frame.user, timer });
    } else if (!known) {
      return;
    } else {
      this.#typing.delete(frame.user.id);
    }
    this.emit("typing", this.typingUsers);
  }
  /**
   * The read receipts seen since subscribing, the furthest per user. Receipts are not replayed:
   * after a (re)subscribe, `api.rooms.readState` gives everyone's marker.
   */
  get readReceipts() {
    return [...this.#reads.values()];
  }
  /** A `read` frame for this channel. */
  readSignal(frame) {
    if (this.#state === "ended") return;
    const known = this.#reads.get(frame.user.id);
    if (known && known.offset >= frame.offset) return;
    const receipt = { user: frame.user, offset: frame.offset };
    this.#reads.set(frame.user.id, receipt);
    this.emit("read", receipt);
  }
  #clearTyping() {
    for (const t of this.#typing.values()) clearTimeout(t.timer);
    this.#typing.clear();
  }
  /** The server ended the subscription (an `error` frame naming the channel). */
  ended(error) {
    this.#end(error);
  }
  #subscribed(ack, since) {
    const top = ack.offset ?? 0;
    if (since === void 0) {
      this.#last = top;
    } else if (since > top) {
      this.#last = top;
      this.emit("reset", { from: since, to: top });
    }
    this.#target = top;
    this.#catchingUp = true;
    this.#state = "live";
    this.#markReady();
    this.#drain();
    this.#caughtUp();
  }
  #accept(message) {
    this.#last = message.offset;
    this.host.offsets.set(this.host.offsetKey(this.channel), message.offset);
    this.emit("message", message);
    if (this.#iterating) {
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve({ value: message, done: false });
      else if (this.#queue.length >= this.#iteratorLimit) {
        this.#fail(new SwitchboardError("too_large", `the iterator fell ${this.#iteratorLimit} messages behind`));
      } else this.#queue.push(message);
    }
    this.#caughtUp();
  }
  #caughtUp() {
    if (this.#catchingUp && this.#last !== void 0 && this.#last >= this.#target) {
      this.#catchingUp = false;
      this.emit("caught_up", { offset: this.#target });
    }
  }
  #drain() {
    if (this.#last === void 0) return;
    for (const offset of [...this.#held.keys()]) {
      if (offset <= this.#last) this.#held.delete(offset);
    }
    let next = this.#held.get(this.#last + 1);
    while (next) {
      this.#held.delete(next.offset);
      this.#accept(next);
      next = this.#held.get(this.#last + 1);
    }
  }
  /** Fetches the offsets missing before the earliest held message from history. */
  async #fill() {
    if (this.#filling) return;
    this.#filling = true;
    const generation = this.#generation;
    try {
      while (this.#held.size > 0 && this.#last !== void 0 && generation === this.#generation) {
        const upto = Math.min(...this.#held.keys());
        const from = this.#last + 1;
        if (upto <= from) {
          this.#drain();
          continue;
        }
        if (upto - from > FILL_MAX) {
          this.start();
          return;
        }
        const missing = [];
        let before = upto;
        while (before > from) {
          const ack = await this.host.connection.request({
            type: "history",
            channel: this.channel,
            before,
            limit: Math.min(FILL_MAX, before - from)
          });
          const page = (ack.messages ?? []).filter((m) => m.offset >= from && m.offset < before);
          if (page.length === 0) break;
          missing.unshift(...page);
          before = page[0].offset;
        }
        if (generation !== this.#generation) return;
        for (const m of missing) this.deliver(m);
        if (this.#last !== void 0 && this.#last < upto - 1) {
          this.start();
          return;
        }
      }
    } catch {
    } finally {
      this.#filling = false;
    }
  }
  #end(error) {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.#generation++;
    this.#held.clear();
    this.#clearTyping();
    this.host.remove(this);
    if (error) {
      this.#error = error;
      this.#failReady(error);
      this.emit("error", error);
      this.#fail(error);
    } else {
      this.#failReady(new SwitchboardError("closed", "unsubscribed"));
      for (const w of this.#waiters.splice(0)) w.resolve({ value: void 0, done: true });
    }
  }
  #fail(error) {
    this.#error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }
  [Symbol.asyncIterator]() {
    this.#iterating = true;
    return {
      next: () => {
        const value = this.#queue.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.#error) return Promise.reject(this.#error);
        if (this.#state === "ended") return Promise.resolve({ value: void 0, done: true });
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      },
      return: () => {
        this.unsubscribe();
        return Promise.resolve({ value: void 0, done: true });
      }
    };
  }
};

// ../typescript/src/client.ts
var Switchboard = class extends Emitter {
  auth;
  api;
  connection;
  #offsets;
  #outbox;
  #subs = /* @__PURE__ */ new Map();
  /** The last typing signal sent per channel, for the SDK's own pace (see `typing`). */
  #typingSent = /* @__PURE__ */ new Map();
  #host;
  constructor(opts) {
    super();
    const fetchImpl = opts.fetch ?? globalThis.fetch?.bind(globalThis);
    const WebSocketImpl = opts.WebSocket ?? globalThis.WebSocket;
    if (!fetchImpl) throw new Error("no fetch: pass `fetch` in the options");
    if (!WebSocketImpl) {
      throw new Error("no WebSocket: pass `WebSocket` in the options (on Node 20, or run it with --experimental-websocket)");
    }
    const base = new URL(opts.url);
    this.auth = new Auth(opts.tokenStore ?? new MemoryTokenStore());
    const http = new Http(base.href, fetchImpl, this.auth);
    this.auth.attach(http);
    this.api = new Api(http);
    this.#offsets = opts.offsetStore ?? new MemoryOffsetStore();
    const codec = opts.codec ?? jsonCodec;
    this.#outbox = new Outbox(opts.outboxLimit ?? 1e3, opts.maxFrameBytes ?? 65536, (channel, data, key) => {
      const frame = codec.encode({ type: "publish", id: 2 ** 31, channel, data, idempotency_key: key });
      return typeof frame === "string" ? utf8Length(frame) : frame.byteLength;
    });
    const ws = new URL("ws", base.href.endsWith("/") ? base.href : base.href + "/");
    ws.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    this.connection = new Connection(ws.href, codec, this.auth, WebSocketImpl, {
      backoff: opts.backoff,
      pingIntervalMs: opts.pingIntervalMs,
      pongTimeoutMs: opts.pongTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs,
      stableAfterMs: opts.stableAfterMs
    });
    this.#host = {
      connection: this.connection,
      offsets: this.#offsets,
      // Offsets are per user: another login in the same browser starts from its own.
      offsetKey: (channel) => `${this.auth.user?.id ?? ""} ${channel}`,
      selfId: () => this.auth.user?.id,
      remove: (sub) => {
        if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
      }
    };
    this.connection.on("state", (change) => {
      if (change.state !== "connected") for (const sub of this.#subs.values()) sub.suspend();
      this.emit("state", change);
    });
    this.connection.on("open", () => {
      for (const sub of this.#subs.values()) sub.start();
      this.#outbox.flush(this.connection);
    });
    this.connection.on("frame", (frame) => this.#route(frame));
    this.connection.on("error", (err) => this.emit("error", err));
    this.auth.on("tokens", (t) => {
      const idle = this.connection.state === "idle" || this.connection.state === "closed";
      if (idle && (this.#subs.size > 0 || this.#outbox.size > 0)) this.connect();
      this.emit("login", t.user);
    });
    this.auth.on("ended", (e) => {
      this.connection.close();
      this.#outbox.rejectAll(new SwitchboardError("unauthorized", "logged out"));
      this.emit("logged_out", e);
    });
  }
  /** The logged-in user, or null. */
  get user() {
    return this.auth.user;
  }
  get state() {
    return this.connection.state;
  }
  register(username, password) {
    return this.auth.register(username, password);
  }
  login(username, password) {
    return this.auth.login(username, password);
  }
  /** Revokes the session everywhere and closes the socket. Subscriptions stay, for a next login. */
  async logout() {
    await this.auth.logout();
  }
  /** Opens the socket (subscribe and publish do it too) and keeps it open until `close()`. */
  connect() {
    this.connection.connect();
  }
  /**
   * Subscribes to a channel, now or as soon as the socket is up, and after every reconnect from
   * the last offset delivered. Subscribing again to a channel replaces the earlier subscription.
   */
  subscribe(channel, opts = {}) {
    this.#subs.get(channel)?.unsubscribe();
    const sub = new Subscription(channel, this.#host, opts);
    this.#subs.set(channel, sub);
    if (this.connection.ready) sub.start();
    else this.connect();
    return sub;
  }
  /** The live subscription to `channel`, if any. */
  subscription(channel) {
    return this.#subs.get(channel);
  }
  /**
   * Publishes and resolves with the stored offset once the server has it durably. While the
   * socket is down the publish waits in the outbox (bounded, see `outboxLimit`) and goes out
   * after the reconnect, in order with the others.
   */
  publish(channel, data, opts = {}) {
    const key = opts.idempotencyKey ?? randomKey();
    if (key.length < 1 || key.length > 64) {
      return Promise.reject(new SwitchboardError("bad_request", "an idempotency key has 1 to 64 characters"));
    }
    const offset = this.#outbox.add(channel, data, key);
    if (this.connection.ready) this.#outbox.flush(this.connection);
    else this.connect();
    return offset;
  }
  /** Publishes waiting for a socket (or for their ack). */
  get pendingPublishes() {
    return this.#outbox.size;
  }
  /**
   * A page of history, ascending: the messages just before `before` (the newest page when
   * absent). Over the socket when it is up, else over HTTP.
   */
  async history(channel, q = {}) {
    if (this.connection.ready) {
      try {
        const ack = await this.connection.request({ type: "history", channel, before: q.before, limit: q.limit });
        return ack.messages ?? [];
      } catch (err) {
        if (!(err instanceof SwitchboardError) || err.code !== "disconnected" && err.code !== "timeout") throw err;
      }
    }
    return this.api.channels.history(channel, q);
  }
  /** One page of who is online in a `room:` channel (needs the socket). */
  async presence(channel, q = {}) {
    await this.#connected();
    const ack = await this.connection.request({ type: "presence", channel, cursor: q.cursor, limit: q.limit });
    return ack.presence ?? { count: 0, users: [] };
  }
  /**
   * Tells the channel's other subscribers that this user is typing (`false`: stopped). Call it
   * on every keystroke: the SDK sends at most one start per channel every 3 s (the server allows
   * one per 2 s, and others show it for 6 s) and a stop only after a start. Needs a live
   * subscription to the `room:` channel; dropped while disconnected (a late signal is wrong).
   */
  typing(channel, typing = true) {
    const now = Date.now();
    const last = this.#typingSent.get(channel);
    if (typing && last?.typing && now - last.at < TYPING_EVERY_MS) return;
    if (!typing && !last?.typing) return;
    if (this.connection.signal({ type: "typing", channel, typing })) {
      this.#typingSent.set(channel, { at: now, typing });
    }
  }
  /** Closes the socket for good; publishes still waiting reject with `closed`. */
  close() {
    this.connection.dispose();
    this.auth.dispose();
    for (const sub of [...this.#subs.values()]) sub.unsubscribe();
    this.#outbox.rejectAll(new SwitchboardError("closed", "the client was closed"));
  }
  /** Resolves once the socket is up (connecting it if needed). */
  #connected() {
    if (this.connection.ready) return Promise.resolve();
    this.connect();
    return new Promise((resolve, reject) => {
      const off = this.connection.on("state", (change) => {
        if (change.state === "connected") {
          off();
          resolve();
        } else if (change.state === "closed") {
          off();
          reject(new SwitchboardError("closed", "the connection was closed"));
        }
      });
    });
  }
  #route(frame) {
    switch (frame.type) {
      case "message":
        this.#subs.get(frame.channel)?.deliver(frame);
        return;
      case "join":
      case "leave":
        this.#subs.get(frame.channel)?.presence(frame.type, frame.user);
        return;
      case "typing":
        this.#subs.get(frame.channel)?.typingSignal(frame);
        return;
      case "read":
        this.#subs.get(frame.channel)?.readSignal(frame);
        return;
      case "error":
        if (frame.channel !== void 0) this.#subs.get(frame.channel)?.ended(SwitchboardError.fromFrame(frame));
        return;
      default:
        return;
    }
  }
};
var TYPING_EVERY_MS = 3e3;
var utf8 = new TextEncoder();
function utf8Length(s) {
  return /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).byteLength;
}
function randomKey() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

// ../typescript/src/types.ts
function isRoomChange(message) {
  const data = message.data;
  return message.from === "system" && typeof data?.kind === "string" && typeof data.by === "object";
}
function lifecycleOf(message) {
  if (message.channel !== void 0 && !message.channel.startsWith("room:")) return null;
  if (message.edited_at !== void 0) return null;
  const d = message.data;
  if (d === null || typeof d !== "object" || typeof d.target !== "number") return null;
  if (message.offset !== void 0 && d.target >= message.offset) return null;
  switch (d.kind) {
    case "edit":
    case "delete":
      return d;
    case "reaction":
      return typeof d.emoji === "string" && (d.op === "add" || d.op === "remove") && typeof d.count === "number" ? d : null;
    default:
      return null;
  }
}
function replyTo(message) {
  const d = message.data;
  return d !== null && typeof d === "object" && typeof d.reply_to === "number" && lifecycleOf(message) === null ? d.reply_to : void 0;
}

// ../typescript/src/fold.ts
var MessageFold = class {
  /** `me`: the viewer's user id, for the `me` of reactions. */
  constructor(me) {
    this.me = me;
  }
  me;
  #base = /* @__PURE__ */ new Map();
  #effects = /* @__PURE__ */ new Map();
  #view = /* @__PURE__ */ new Map();
  /**
   * Folds one message in (live, replayed or from a history page). Returns the offsets of the
   * shown messages whose view may have changed: the message itself, or the one an edit, delete,
   * reaction or reply is about (when it is known here). Edits, deletes and reactions are not
   * shown messages themselves.
   */
  add(message) {
    const life = lifecycleOf(message);
    if (life) {
      const fx = this.#fx(life.target);
      if (life.kind === "delete") fx.deleted = true;
      else if (life.kind === "edit") {
        if (fx.edit === void 0 || fx.edit.offset < message.offset) {
          fx.edit = life.data === void 0 ? { offset: message.offset, ts: message.ts } : { offset: message.offset, ts: message.ts, data: life.data };
        }
      } else {
        const known = fx.reactions.get(life.emoji);
        if (known === void 0 || known.offset < message.offset) fx.reactions.set(life.emoji, { offset: message.offset, count: life.count });
        if (this.me !== void 0 && message.from === this.me) {
          const mine = fx.mine.get(life.emoji);
          if (mine === void 0 || mine.offset < message.offset) fx.mine.set(life.emoji, { offset: message.offset, on: life.op === "add" });
        }
      }
      return this.#refresh(life.target);
    }
    const { type: _frame, ...plain } = message;
    message = plain;
    const old = this.#base.get(message.offset);
    if (old === void 0 || hasState(message) || !hasState(old)) this.#base.set(message.offset, message);
    const parent = replyTo(message);
    const changed = this.#refresh(message.offset);
    if (parent !== void 0) {
      const fx = this.#fx(parent);
      if (!fx.replies.has(message.offset)) {
        fx.replies.add(message.offset);
        changed.push(...this.#refresh(parent));
      }
    }
    return changed;
  }
  /** Folds in many (e.g. a history page); returns the offsets changed, ascending, once each. */
  addAll(messages) {
    const changed = /* @__PURE__ */ new Set();
    for (const m of messages) for (const o of this.add(m)) changed.add(o);
    return [...changed].sort((a, b) => a - b);
  }
  /** The shown message at `offset` as it is now (not for edits, deletes and reactions). */
  get(offset) {
    return this.#view.get(offset);
  }
  /** Every shown message (chat and system messages), ascending by offset. */
  messages() {
    return [...this.#view.values()].sort((a, b) => a.offset - b.offset);
  }
  #fx(target) {
    let fx = this.#effects.get(target);
    if (!fx) {
      fx = { reactions: /* @__PURE__ */ new Map(), mine: /* @__PURE__ */ new Map(), replies: /* @__PURE__ */ new Set() };
      this.#effects.set(target, fx);
    }
    return fx;
  }
  #refresh(offset) {
    const base = this.#base.get(offset);
    if (base === void 0) return [];
    const fx = this.#effects.get(offset);
    this.#view.set(offset, fx ? apply(base, fx) : base);
    return [offset];
  }
};
function hasState(m) {
  return m.edited_at !== void 0 || m.deleted === true || m.replies !== void 0 || m.reactions !== void 0 || m.hidden === true;
}
function apply(base, fx) {
  const m = { ...base };
  const replies = Math.max(base.replies ?? 0, fx.replies.size);
  if (replies > 0) m.replies = replies;
  if (base.hidden) return m;
  const edit = fx.edit && (base.edited_at === void 0 || Date.parse(fx.edit.ts) >= Date.parse(base.edited_at)) ? fx.edit : void 0;
  if (edit) m.edited_at = edit.ts;
  if (base.deleted || fx.deleted) {
    m.deleted = true;
    m.data = null;
    delete m.reactions;
    return m;
  }
  if (edit?.data !== void 0) m.data = edit.data;
  if (fx.reactions.size > 0 || fx.mine.size > 0) {
    const counts = /* @__PURE__ */ new Map();
    for (const r of base.reactions ?? []) counts.set(r.emoji, { ...r });
    for (const [emoji, { count }] of fx.reactions) counts.set(emoji, { emoji, count, me: counts.get(emoji)?.me ?? false });
    for (const [emoji, { on }] of fx.mine) {
      const r = counts.get(emoji);
      if (r) r.me = on;
    }
    const list = [...counts.values()].filter((r) => r.count > 0).sort(byUse);
    if (list.length > 0) m.reactions = list;
    else delete m.reactions;
  }
  return m;
}
function byUse(a, b) {
  if (a.count !== b.count) return b.count - a.count;
  const x = Array.from(a.emoji, (c) => c.codePointAt(0));
  const y = Array.from(b.emoji, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// src/users.ts
var Users = class {
  constructor(sb2, me) {
    this.sb = sb2;
    this.me = me;
    this.remember(me);
  }
  sb;
  me;
  #names = /* @__PURE__ */ new Map();
  #lookups = /* @__PURE__ */ new Map();
  #following = /* @__PURE__ */ new Set();
  #blocked = /* @__PURE__ */ new Set();
  #blocksLoaded = null;
  /** Opens a user's profile in the People panel (set by the panel). */
  open = () => void 0;
  /** Opens a room in the chat view (set by the app). */
  openRoom = () => void 0;
  remember(user) {
    this.#names.set(user.id, user.username);
  }
  /** The name of `id`, looked up once (`system` is a server API key, not a user). */
  name(id) {
    const known = this.#names.get(id);
    if (known !== void 0) return Promise.resolve(known);
    if (id === "system") return Promise.resolve("system");
    let lookup = this.#lookups.get(id);
    if (!lookup) {
      lookup = this.sb.api.users.get(id).then(
        (p) => {
          this.remember(p);
          return p.username;
        },
        () => {
          this.#lookups.delete(id);
          return "unknown user";
        }
      );
      this.#lookups.set(id, lookup);
    }
    return lookup;
  }
  /** A button showing the user's name (filled in when known) that opens their profile. */
  link(id, known) {
    const el = h("button", { class: "user-link", testid: "user-link", attrs: { type: "button", "data-user-id": id } });
    const name = known ?? this.#names.get(id);
    if (known) this.remember({ id, username: known });
    el.textContent = name ?? "…";
    if (name === void 0) void this.name(id).then((n) => el.textContent = n);
    if (id === "system") el.disabled = true;
    else el.addEventListener("click", () => this.open(id));
    return el;
  }
  /** Opens (creating it the first time) the direct message with `id`, in the chat view. */
  async openDm(id) {
    const dm = await this.sb.api.dms.open(id);
    this.remember(dm.user);
    this.openRoom(dm.room);
  }
  isBlocked(id) {
    return this.#blocked.has(id);
  }
  /** Loads who the viewer blocked (once; the first 200: enough for a demo's buttons). */
  loadBlocks() {
    this.#blocksLoaded ??= this.sb.api.blocks.list({ limit: 200 }).then(
      (page) => {
        for (const u of page.users) {
          this.#blocked.add(u.id);
          this.remember(u);
        }
      },
      (err) => {
        this.#blocksLoaded = null;
        throw err;
      }
    );
    return this.#blocksLoaded;
  }
  async block(id) {
    await this.sb.api.blocks.add(id);
    this.#blocked.add(id);
  }
  async unblock(id) {
    try {
      await this.sb.api.blocks.remove(id);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "not_found") throw err;
    }
    this.#blocked.delete(id);
  }
  isFollowing(id) {
    return this.#following.has(id);
  }
  /** Loads who the viewer follows (the first 200: enough for a demo's buttons). */
  async loadFollowing() {
    const page = await this.sb.api.users.following(this.me.id, { limit: 200 });
    for (const u of page.users) {
      this.#following.add(u.id);
      this.remember(u);
    }
  }
  async follow(id) {
    await this.sb.api.users.follow(id);
    this.#following.add(id);
  }
  async unfollow(id) {
    try {
      await this.sb.api.users.unfollow(id);
    } catch (err) {
      if (!(err instanceof SwitchboardError) || err.code !== "not_found") throw err;
    }
    this.#following.delete(id);
  }
};
function peoplePanel(users) {
  const input = h("input", {
    testid: "find-user-input",
    attrs: { placeholder: "username", "aria-label": "Find a user by name", maxlength: 32, required: true }
  });
  const card = h("div", { class: "profile", testid: "profile" });
  card.hidden = true;
  let shown = 0;
  const render = async (load) => {
    const mine = ++shown;
    card.hidden = false;
    replace(card, h("p", { class: "muted", text: "Loading…" }));
    let profile;
    try {
      profile = await load();
    } catch (err) {
      if (mine !== shown) return;
      const text2 = err instanceof SwitchboardError && err.code === "not_found" ? "No such user." : describe(err);
      replace(card, h("p", { class: "error", testid: "profile-error", text: text2 }));
      return;
    }
    if (mine !== shown) return;
    users.remember(profile);
    const self = profile.id === users.me.id;
    const button = h("button", { testid: "follow-toggle", attrs: { type: "button" } });
    const error = h("p", { class: "error" });
    error.hidden = true;
    const label = () => {
      const on = users.isFollowing(profile.id);
      button.textContent = on ? "Unfollow" : "Follow";
      button.dataset.following = String(on);
      button.classList.toggle("secondary", on);
    };
    label();
    const dm = h("button", { class: "secondary", testid: "profile-dm", text: "Message", attrs: { type: "button" } });
    dm.addEventListener("click", () => {
      error.hidden = true;
      users.openDm(profile.id).catch((err) => {
        error.textContent = describe(err);
        error.hidden = false;
      });
    });
    const block = blockButton(users, profile.id, "profile-block", (err) => {
      error.textContent = describe(err);
      error.hidden = false;
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.hidden = true;
      try {
        if (users.isFollowing(profile.id)) await users.unfollow(profile.id);
        else await users.follow(profile.id);
        label();
        void render(() => users.sb.api.users.get(profile.id));
      } catch (err) {
        error.textContent = describe(err);
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
    replace(
      card,
      h("div", { class: "profile-name", testid: "profile-name", text: profile.username }),
      h(
        "div",
        { class: "muted" },
        h("span", { testid: "profile-followers", text: String(profile.followers) }),
        profile.followers === 1 ? " follower · " : " followers · ",
        h("span", { testid: "profile-following", text: String(profile.following) }),
        " following"
      ),
      self ? h("p", { class: "muted", text: "That is you." }) : h("div", { class: "row" }, button, dm, block),
      error
    );
  };
  users.open = (id) => void render(() => users.sb.api.users.get(id));
  const form = h(
    "form",
    {
      class: "row",
      testid: "find-user",
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const name = input.value.trim();
          if (!name) return;
          void render(async () => users.sb.api.users.get((await users.sb.api.users.byUsername(name)).id));
        }
      }
    },
    input,
    h("button", { class: "secondary", testid: "find-user-submit", text: "Find", attrs: { type: "submit" } })
  );
  return h("section", { class: "panel people", testid: "people" }, h("h2", { text: "People" }), form, card);
}
function blockButton(users, id, testid, onError) {
  const button = h("button", { class: "link", testid, attrs: { type: "button", "data-user-id": id } });
  const label = () => {
    const on = users.isBlocked(id);
    button.textContent = on ? "unblock" : "block";
    button.dataset.blocked = String(on);
  };
  label();
  void users.loadBlocks().then(label, () => void 0);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await users.loadBlocks();
      if (users.isBlocked(id)) await users.unblock(id);
      else await users.block(id);
      label();
    } catch (err) {
      onError(err);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// src/members.ts
var SHOWN = 200;
function memberList(sb2, users, room) {
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
          act(() => sb2.api.rooms.addMember(room, { username }));
        }
      }
    },
    add
  );
  const leave = h("button", { class: "link", testid: "room-leave", text: "Leave room", attrs: { type: "button" } });
  leave.addEventListener("click", () => act(() => sb2.api.rooms.leave(room)));
  const el = h("aside", { class: "panel presence-panel", testid: "members" }, h("h3", { text: "Members" }), list, addForm, leave, notice);
  let mine;
  const act = (change, reload = true) => {
    notice.hidden = true;
    change().then(
      () => reload ? refresh() : void 0,
      (err) => {
        notice.textContent = describe(err);
        notice.hidden = false;
      }
    );
  };
  const row = (m) => {
    const controls = [];
    const above = mine === "owner" || mine === "admin" && m.role === "member";
    if (m.id !== users.me.id) {
      if (!room.startsWith("dm.")) {
        controls.push(
          h("button", {
            class: "link",
            testid: "member-dm",
            text: "message",
            attrs: { type: "button" },
            on: { click: () => act(() => users.openDm(m.id), false) }
          })
        );
      }
      controls.push(
        blockButton(users, m.id, "member-block", (err) => {
          notice.textContent = describe(err);
          notice.hidden = false;
        })
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
          on: { click: () => act(() => sb2.api.rooms.setRole(room, m.id, promote)) }
        }),
        h("button", {
          class: "link",
          testid: "member-remove",
          text: "remove",
          attrs: { type: "button" },
          on: { click: () => act(() => sb2.api.rooms.removeMember(room, m.id)) }
        }),
        h("button", {
          class: "link",
          testid: "member-ban",
          text: "ban",
          attrs: { type: "button" },
          on: { click: () => act(() => sb2.api.rooms.ban(room, m.id)) }
        })
      );
    }
    return h(
      "li",
      { testid: "member", attrs: { "data-user-id": m.id, "data-username": m.username, "data-role": m.role } },
      users.link(m.id, m.username),
      h("span", { class: "muted", text: m.role === "member" ? "" : ` ${m.role}` }),
      ...controls
    );
  };
  async function refresh() {
    try {
      const detail = await sb2.api.rooms.get(room);
      panel.created = detail.created;
      if (!detail.created) {
        el.hidden = true;
        return;
      }
      const page = await sb2.api.rooms.members(room, { limit: SHOWN });
      mine = detail.role;
      panel.role = mine;
      panel.members = page.members;
      for (const m of page.members) users.remember(m);
      replace(list, ...page.members.map(row));
      addForm.hidden = mine !== "owner" && mine !== "admin";
      leave.hidden = mine === void 0 || mine === "owner";
      el.hidden = false;
    } catch (err) {
      if (err instanceof SwitchboardError && (err.code === "not_found" || err.code === "forbidden")) {
        el.hidden = true;
        return;
      }
      notice.textContent = describe(err);
      notice.hidden = false;
    }
  }
  el.hidden = true;
  const panel = { el, refresh, created: false, role: void 0, members: [] };
  return panel;
}

// src/presence.ts
var MAX_PAGES = 5;
function presenceList(sb2, users, channel) {
  const online = /* @__PURE__ */ new Map();
  let total = null;
  let changes = null;
  const count = h("span", { class: "count", testid: "presence-count", text: "0" });
  const list = h("ul", { class: "presence", testid: "presence-list" });
  const render = () => {
    const sorted = [...online.values()].sort((a, b) => a.username.localeCompare(b.username));
    replace(
      list,
      ...sorted.map(
        (u) => h(
          "li",
          { testid: "presence-user", attrs: { "data-user-id": u.id, "data-username": u.username } },
          h("span", { class: "dot" }),
          users.link(u.id, u.username)
        )
      )
    );
    count.textContent = String(Math.max(total ?? 0, online.size));
  };
  const change = (kind, user) => {
    users.remember(user);
    changes?.set(user.id, { kind, user });
    const had = online.has(user.id);
    if (kind === "join") online.set(user.id, user);
    else online.delete(user.id);
    if (total !== null && had !== online.has(user.id)) total += kind === "join" ? 1 : -1;
    render();
  };
  const refresh = async () => {
    const mine = /* @__PURE__ */ new Map();
    changes = mine;
    const seen = /* @__PURE__ */ new Map();
    let cursor;
    let pageTotal = 0;
    try {
      for (let i = 0; i < MAX_PAGES; i++) {
        const page = await sb2.presence(channel, { cursor, limit: 1e3 });
        pageTotal = page.count;
        for (const u of page.users) seen.set(u.id, u);
        cursor = page.cursor;
        if (!cursor || page.users.length === 0) break;
      }
    } catch {
      if (changes === mine) changes = null;
      return;
    }
    if (changes !== mine) return;
    changes = null;
    for (const { kind, user } of mine.values()) {
      if (kind === "join") seen.set(user.id, user);
      else seen.delete(user.id);
    }
    online.clear();
    for (const [id, u] of seen) {
      online.set(id, u);
      users.remember(u);
    }
    total = mine.size === 0 ? pageTotal : seen.size;
    render();
  };
  const el = h("aside", { class: "panel presence-panel", testid: "presence" }, h("h3", {}, "Online ", count), list);
  return { el, join: (u) => change("join", u), leave: (u) => change("leave", u), refresh };
}

// src/chat.ts
var PAGE = 50;
var EMOJI = ["👍", "❤️", "😂", "🎉"];
var ChatView = class {
  constructor(sb2, users, room) {
    this.sb = sb2;
    this.users = users;
    this.room = room;
    this.channel = `room:${room}`;
    this.#fold = new MessageFold(users.me.id);
    this.#replyBar = h("div", { class: "reply-bar", testid: "reply-bar" });
    this.#replyBar.hidden = true;
    this.#older = h("button", { class: "link", testid: "load-older", text: "Load older messages", attrs: { type: "button" } });
    this.#older.addEventListener("click", () => void this.loadOlder());
    this.#beginning = h("span", { class: "muted", testid: "history-start", text: `This is the beginning of #${room}.` });
    this.#top = h("li", { class: "top" }, this.#older, this.#beginning);
    this.#list = h("ol", { class: "messages", testid: "messages", attrs: { "aria-live": "polite" } }, this.#top);
    this.#list.addEventListener("scroll", () => {
      if (this.#list.scrollTop < 40) void this.loadOlder();
    });
    this.#pending = h("ul", { class: "pending" });
    this.#notice = h("p", { class: "error", testid: "chat-error", attrs: { role: "alert" } });
    this.#notice.hidden = true;
    this.#input = h("input", {
      testid: "chat-input",
      attrs: { placeholder: `Message #${room}`, "aria-label": "Message", maxlength: 4e3, autocomplete: "off" }
    });
    this.#input.addEventListener("input", () => {
      if (this.#input.value !== "") this.sb.typing(this.channel);
    });
    this.#typing = h("p", { class: "typing muted", testid: "typing-indicator", attrs: { "aria-live": "polite" } });
    this.#send = h("button", { testid: "chat-send", text: "Send", attrs: { type: "submit" } });
    const form = h(
      "form",
      {
        class: "composer",
        testid: "chat-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            this.#publish();
          }
        }
      },
      this.#input,
      this.#send
    );
    this.#presence = presenceList(sb2, users, this.channel);
    this.#members = memberList(sb2, users, room);
    this.el = h(
      "section",
      { class: "chat", testid: "chat", attrs: { "data-room": room, "data-state": "loading" } },
      h(
        "div",
        { class: "chat-main" },
        h("header", { class: "view-header" }, h("h2", { testid: "chat-title", text: room.startsWith("dm.") ? "Direct message" : `#${room}` })),
        this.#list,
        this.#pending,
        this.#typing,
        this.#notice,
        this.#replyBar,
        form
      ),
      h("div", { class: "chat-side" }, this.#presence.el, this.#members.el)
    );
    this.#older.hidden = true;
    this.#beginning.hidden = true;
  }
  sb;
  users;
  room;
  el;
  channel;
  #list;
  #top;
  #older;
  #beginning;
  #notice;
  #input;
  #send;
  #pending;
  #presence;
  #typing;
  #members;
  #rows = /* @__PURE__ */ new Map();
  /** Offsets shown, ascending. */
  #offsets = [];
  #fold;
  /** Every offset of the channel seen (lifecycle messages too): where the history pages go on. */
  #firstSeen;
  #lastSeen = 0;
  /** The message being replied to, and the one being edited (with the draft). */
  #replyTo = null;
  #editing = null;
  #replyBar;
  #sub = null;
  #hasOlder = false;
  #loadingOlder = false;
  #disposed = false;
  #readUpTo = 0;
  #readSent = 0;
  #readTimer = null;
  /** Loads the newest page, then goes live from its last offset. */
  async start() {
    this.el.dataset.state = "loading";
    this.#notice.hidden = true;
    let page;
    try {
      page = await this.sb.history(this.channel, { limit: PAGE });
    } catch (err) {
      if (this.#disposed) return;
      this.#fail(err, true);
      return;
    }
    if (this.#disposed) return;
    for (const m of page) this.#insert(m);
    this.#setHasOlder(page.length > 0 && page[0].offset > 1);
    this.#scrollToBottom();
    const top = page.length > 0 ? page[page.length - 1].offset : 0;
    const sub = this.sb.subscribe(this.channel, {
      since: Math.max(top, this.#lastSeen),
      onMessage: (m) => this.#live(m),
      onJoin: (u) => this.#presence.join(u),
      onLeave: (u) => this.#presence.leave(u),
      onTyping: (who) => this.#showTyping(who),
      onError: (err) => this.#fail(err, false)
    });
    this.#sub = sub;
    sub.on("caught_up", () => {
      this.el.dataset.state = "live";
      void this.#presence.refresh();
      void this.#members.refresh().then(() => {
        this.#roleChanged();
        this.#markRead(this.#lastSeen);
      });
    });
  }
  dispose() {
    this.#disposed = true;
    if (this.#readTimer !== null) clearTimeout(this.#readTimer);
    this.#sub?.unsubscribe();
    this.#sub = null;
    this.el.remove();
  }
  focus() {
    this.#input.focus();
  }
  /** The page of messages just before the oldest one shown. */
  async loadOlder() {
    if (!this.#hasOlder || this.#loadingOlder || this.#disposed) return;
    const first = this.#firstSeen;
    if (first === void 0) return;
    this.#loadingOlder = true;
    this.#older.disabled = true;
    this.#older.textContent = "Loading…";
    try {
      const page = await this.sb.history(this.channel, { before: first, limit: PAGE });
      if (this.#disposed) return;
      const fromBottom = this.#list.scrollHeight - this.#list.scrollTop;
      for (const m of page) this.#insert(m);
      this.#list.scrollTop = this.#list.scrollHeight - fromBottom;
      this.#setHasOlder(page.length > 0 && page[0].offset > 1);
    } catch (err) {
      this.#notice.textContent = `Could not load older messages: ${describe(err)}`;
      this.#notice.hidden = false;
    } finally {
      this.#loadingOlder = false;
      this.#older.disabled = false;
      this.#older.textContent = "Load older messages";
    }
  }
  #live(m) {
    if (isRoomChange(m)) void this.#members.refresh().then(() => this.#roleChanged());
    this.#markRead(m.offset);
    const stick = this.#nearBottom() || m.from === this.users.me.id;
    if (this.#insert(m) && stick) this.#scrollToBottom();
  }
  /** Moves the read marker to `offset` while the page is in view, at most every 2 s. */
  #markRead(offset) {
    this.#readUpTo = Math.max(this.#readUpTo, offset);
    if (this.#readTimer !== null || !this.#members.created) return;
    this.#readTimer = setTimeout(() => {
      this.#readTimer = null;
      if (this.#disposed || document.visibilityState !== "visible" || this.#readUpTo <= this.#readSent) return;
      const upTo = this.#readUpTo;
      this.sb.api.rooms.markRead(this.room, upTo).then(
        () => this.#readSent = Math.max(this.#readSent, upTo),
        () => void 0
        // the next message tries again
      );
    }, 2e3);
  }
  #showTyping(who) {
    const names = who.map((u) => u.username).sort();
    this.#typing.textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  }
  /**
   * Folds a message in and draws what it changed: its own row, or the row of the message an
   * edit, delete, reaction or reply is about. True when a new row was added.
   */
  #insert(m) {
    if (m.channel !== this.channel) return false;
    this.#firstSeen = Math.min(this.#firstSeen ?? m.offset, m.offset);
    this.#lastSeen = Math.max(this.#lastSeen, m.offset);
    let added = false;
    for (const offset of this.#fold.add(m)) {
      const now = this.#fold.get(offset);
      if (now === void 0) continue;
      const old = this.#rows.get(offset);
      if (old === void 0) {
        this.#place(now);
        added = true;
        for (const child of this.#children.get(offset) ?? []) this.#redraw(child);
      } else if (this.#drawn.get(offset) !== JSON.stringify(now)) {
        this.#redraw(offset);
        for (const child of this.#children.get(offset) ?? []) this.#redraw(child);
      }
    }
    return added;
  }
  /** The rendered state of each row, to skip drawing one again unchanged. */
  #drawn = /* @__PURE__ */ new Map();
  /** The shown replies of each message. */
  #children = /* @__PURE__ */ new Map();
  #render(m) {
    this.#drawn.set(m.offset, JSON.stringify(m));
    const parent = replyTo(m);
    if (parent !== void 0) {
      let set = this.#children.get(parent);
      if (!set) this.#children.set(parent, set = /* @__PURE__ */ new Set());
      set.add(m.offset);
    }
    return isRoomChange(m) ? this.#systemRow(m, m.data) : this.#messageRow(m);
  }
  /** Adds a row in offset order. */
  #place(m) {
    const row = this.#render(m);
    let lo = 0;
    let hi = this.#offsets.length;
    while (lo < hi) {
      const mid = lo + hi >> 1;
      if (this.#offsets[mid] < m.offset) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#offsets[lo];
    this.#list.insertBefore(row, next === void 0 ? null : this.#rows.get(next) ?? null);
    this.#offsets.splice(lo, 0, m.offset);
    this.#rows.set(m.offset, row);
  }
  /** Draws a shown message again (it was edited, reacted to, replied to, deleted...). */
  #redraw(offset) {
    const old = this.#rows.get(offset);
    const now = this.#fold.get(offset);
    if (old === void 0 || now === void 0) return;
    const focused = old.contains(document.activeElement);
    const row = this.#render(now);
    old.replaceWith(row);
    this.#rows.set(offset, row);
    if (focused) row.querySelector("[data-testid=edit-input]")?.focus();
  }
  /** A membership or moderation change, as a line of its own. */
  #systemRow(m, change) {
    return h(
      "li",
      {
        class: "msg system",
        testid: "system-message",
        attrs: { "data-offset": m.offset, "data-channel": m.channel, "data-kind": change.kind }
      },
      h("span", { class: "muted", text: describeChange(change) })
    );
  }
  #messageRow(m) {
    const mine = m.from === this.users.me.id;
    const gone = m.deleted === true || m.hidden === true;
    const parent = replyTo(m);
    const editing = this.#editing?.offset === m.offset && !gone ? this.#editing : null;
    return h(
      "li",
      {
        class: ["msg", mine ? "mine" : "", gone ? "gone" : ""].filter(Boolean).join(" "),
        testid: "message",
        attrs: {
          "data-offset": m.offset,
          "data-channel": m.channel,
          "data-from": m.from,
          "data-deleted": m.deleted === true,
          "data-hidden": m.hidden === true,
          "data-edited": m.edited_at !== void 0
        }
      },
      h(
        "div",
        { class: "meta" },
        this.users.link(m.from),
        h("time", { class: "muted", text: clock(m.ts), attrs: { datetime: m.ts, title: m.ts } }),
        m.edited_at !== void 0 && !gone ? h("span", { class: "muted edited", testid: "message-edited", text: "(edited)", attrs: { title: m.edited_at } }) : null
      ),
      parent !== void 0 ? this.#replyContext(parent) : null,
      m.hidden ? h("div", { class: "text tombstone", testid: "message-text", text: "hidden (blocked user)" }) : m.deleted ? h("div", { class: "text tombstone", testid: "message-text", text: "message deleted" }) : editing ? this.#editForm(m, editing) : h("div", { class: "text", testid: "message-text" }, withMentions(textOf(m.data), this.users.me.username)),
      gone ? null : this.#reactionChips(m),
      h(
        "div",
        { class: "msg-foot" },
        m.replies ? h("span", { class: "muted", testid: "message-replies", text: m.replies === 1 ? "1 reply" : `${m.replies} replies` }) : null,
        gone ? null : this.#actions(m, mine)
      )
    );
  }
  /** "↪ alice: the start of what she wrote" above a reply. */
  #replyContext(parent) {
    const p = typeof parent === "number" ? this.#fold.get(parent) : parent;
    const offset = typeof parent === "number" ? parent : parent.offset;
    return h(
      "div",
      { class: "reply-to muted", testid: "message-reply-to", attrs: { "data-reply-to": offset } },
      "↪ ",
      p ? this.users.link(p.from) : "an earlier message",
      p ? `: ${excerpt(p)}` : ""
    );
  }
  #reactionChips(m) {
    const reactions = m.reactions ?? [];
    if (reactions.length === 0) return null;
    return h(
      "div",
      { class: "reactions", testid: "reactions" },
      ...reactions.map(
        (r) => h("button", {
          class: r.me ? "chip me" : "chip",
          testid: "reaction",
          text: `${r.emoji} ${r.count}`,
          attrs: {
            type: "button",
            "data-emoji": r.emoji,
            "data-count": r.count,
            "data-me": String(r.me),
            title: r.me ? "Take your reaction back" : "React with this too",
            "aria-pressed": String(r.me)
          },
          on: { click: () => this.#toggleReaction(m.offset, r.emoji) }
        })
      )
    );
  }
  #actions(m, mine) {
    const button = (testid, text2, click, extra = {}, cls = "link") => h("button", { class: cls, testid, text: text2, attrs: { type: "button", ...extra }, on: { click } });
    return h(
      "span",
      { class: "actions" },
      button("message-reply", "reply", () => this.#setReply(m.offset)),
      ...EMOJI.map(
        (emoji) => button("react-add", emoji, () => this.#toggleReaction(m.offset, emoji), { "data-emoji": emoji, title: `React with ${emoji}` }, "link emoji")
      ),
      mine ? button("message-edit", "edit", () => this.#startEdit(m)) : null,
      // Others' messages: for the room's owner and admins only (the chat's `moderator` class).
      button("message-delete", "delete", () => this.#delete(m.offset), {}, mine ? "link" : "link moderate")
    );
  }
  #editForm(m, editing) {
    const input = h("input", {
      testid: "edit-input",
      attrs: { "aria-label": "Edit message", maxlength: 4e3, autocomplete: "off" }
    });
    input.value = editing.draft;
    input.addEventListener("input", () => editing.draft = input.value);
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.#cancelEdit();
    });
    return h(
      "form",
      {
        class: "edit",
        testid: "edit-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            this.#saveEdit(m);
          }
        }
      },
      input,
      h("button", { testid: "edit-save", text: "Save", attrs: { type: "submit" } }),
      h("button", { class: "secondary", testid: "edit-cancel", text: "Cancel", attrs: { type: "button" }, on: { click: () => this.#cancelEdit() } })
    );
  }
  #startEdit(m) {
    const previous = this.#editing;
    this.#editing = { offset: m.offset, draft: textOf(m.data) };
    if (previous) this.#redraw(previous.offset);
    this.#redraw(m.offset);
    this.#rows.get(m.offset)?.querySelector("[data-testid=edit-input]")?.focus();
  }
  #cancelEdit() {
    const editing = this.#editing;
    this.#editing = null;
    if (editing) this.#redraw(editing.offset);
    this.#input.focus();
  }
  #saveEdit(m) {
    const editing = this.#editing;
    if (!editing || editing.offset !== m.offset) return;
    const text2 = editing.draft.trim();
    if (text2 === "" || text2 === textOf(this.#fold.get(m.offset)?.data)) return this.#cancelEdit();
    const now = this.#fold.get(m.offset)?.data;
    const data = now && typeof now === "object" && !Array.isArray(now) ? { ...now, text: text2 } : { text: text2 };
    this.#notice.hidden = true;
    this.sb.api.rooms.editMessage(this.room, m.offset, data).then(
      () => {
        if (this.#editing === editing) this.#cancelEdit();
      },
      (err) => this.#error("Not edited", err)
    );
  }
  #delete(offset) {
    this.#notice.hidden = true;
    this.sb.api.rooms.deleteMessage(this.room, offset).then(
      () => void 0,
      (err) => this.#error("Not deleted", err)
    );
  }
  #toggleReaction(offset, emoji) {
    const on = this.#fold.get(offset)?.reactions?.some((r) => r.emoji === emoji && r.me) ?? false;
    this.#notice.hidden = true;
    (on ? this.sb.api.rooms.unreact(this.room, offset, emoji) : this.sb.api.rooms.react(this.room, offset, emoji)).then(
      () => void 0,
      (err) => this.#error(on ? "Reaction not removed" : "Reaction not added", err)
    );
  }
  #setReply(offset) {
    this.#replyTo = offset;
    const parent = offset === null ? void 0 : this.#fold.get(offset);
    if (offset === null || parent === void 0) {
      this.#replyTo = null;
      this.#replyBar.hidden = true;
      replace(this.#replyBar);
      return;
    }
    replace(
      this.#replyBar,
      h("span", { testid: "reply-bar-text" }, "Replying to ", this.users.link(parent.from), `: ${excerpt(parent)}`),
      h("button", { class: "link", testid: "reply-cancel", text: "cancel", attrs: { type: "button" }, on: { click: () => this.#setReply(null) } })
    );
    this.#replyBar.dataset.replyTo = String(offset);
    this.#replyBar.hidden = false;
    this.#input.focus();
  }
  /** Owners and admins may delete anyone's message; the page shows them the buttons. */
  #roleChanged() {
    const role = this.#members.role;
    this.el.classList.toggle("moderator", role === "owner" || role === "admin");
    if (this.room.startsWith("dm.")) {
      const other = this.#members.members.find((m) => m.id !== this.users.me.id);
      if (other) this.el.querySelector("[data-testid=chat-title]").textContent = `Direct message with ${other.username}`;
    }
  }
  #error(what, err) {
    this.#notice.textContent = `${what}: ${describe(err)}`;
    this.#notice.hidden = false;
  }
  #publish() {
    const text2 = this.#input.value.trim();
    if (text2 === "") return;
    this.#input.value = "";
    this.sb.typing(this.channel, false);
    this.#notice.hidden = true;
    const parent = this.#replyTo;
    this.#setReply(null);
    const pending = h("li", { class: "msg pending", testid: "message-pending", text: text2 });
    this.#pending.append(pending);
    this.#scrollToBottom();
    this.sb.publish(this.channel, parent === null ? { text: text2 } : { text: text2, reply_to: parent }).then(
      () => pending.remove(),
      (err) => {
        pending.remove();
        if (this.#input.value === "") this.#input.value = text2;
        if (parent !== null && this.#replyTo === null) this.#setReply(parent);
        this.#notice.textContent = `Not sent: ${describe(err)}`;
        this.#notice.hidden = false;
      }
    );
  }
  #fail(err, retry) {
    this.el.dataset.state = "error";
    const forbidden = err instanceof SwitchboardError && err.code === "forbidden";
    replace(
      this.#notice,
      forbidden ? `You cannot read #${this.room}: ${describe(err)}` : describe(err),
      retry && !forbidden ? h("button", { class: "link", text: " Retry", attrs: { type: "button" }, on: { click: () => void this.start() } }) : null
    );
    this.#notice.hidden = false;
    if (forbidden) this.#input.disabled = this.#send.disabled = true;
  }
  #setHasOlder(more) {
    this.#hasOlder = more;
    this.#older.hidden = !more;
    this.#beginning.hidden = more;
  }
  #nearBottom() {
    const l = this.#list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }
  #scrollToBottom() {
    this.#list.scrollTop = this.#list.scrollHeight;
  }
};
function excerpt(m) {
  if (m.deleted) return "message deleted";
  if (m.hidden) return "hidden (blocked user)";
  const text2 = textOf(m.data);
  return text2.length > 60 ? `${text2.slice(0, 60)}…` : text2;
}
function describeChange(c) {
  const by = c.by.username;
  const user = c.user?.username ?? "someone";
  switch (c.kind) {
    case "member_added":
      return c.user?.id === c.by.id ? `${user} joined` : `${by} added ${user}`;
    case "member_removed":
      return `${by} removed ${user}`;
    case "member_left":
      return `${user} left`;
    case "role_changed":
      return `${by} made ${user} ${c.role === "admin" ? "an admin" : "a member"}`;
    case "ownership_transferred":
      return `${by} handed the room to ${user}`;
    case "banned":
      return `${by} banned ${user}`;
    case "unbanned":
      return `${by} lifted the ban on ${user}`;
    case "timed_out":
      return `${by} timed ${user} out until ${new Date(c.until ?? 0).toLocaleTimeString()}`;
    case "timeout_lifted":
      return `${by} lifted ${user}'s timeout`;
    case "renamed":
      return c.title ? `${by} renamed the room to "${c.title}"` : `${by} cleared the room's title`;
    case "archived":
      return `${by} archived the room (read-only)`;
    case "unarchived":
      return `${by} reopened the room`;
  }
}

// src/feed.ts
var PAGE2 = 30;
var FeedView = class {
  constructor(sb2, users) {
    this.sb = sb2;
    this.users = users;
    this.#input = h("textarea", {
      testid: "post-input",
      attrs: { placeholder: "What is happening?", "aria-label": "New post", rows: 3, maxlength: 4e3 }
    });
    this.#post = h("button", { testid: "post-submit", text: "Post", attrs: { type: "submit" } });
    const composer = h(
      "form",
      {
        class: "post-composer card",
        testid: "post-form",
        on: {
          submit: (ev) => {
            ev.preventDefault();
            void this.#create();
          }
        }
      },
      this.#input,
      h("div", { class: "row end" }, this.#post)
    );
    this.#list = h("ol", { class: "feed", testid: "feed-list", attrs: { "aria-live": "polite" } });
    this.#more = h("button", { class: "link", testid: "feed-more", text: "Older posts", attrs: { type: "button" } });
    this.#more.hidden = true;
    this.#more.addEventListener("click", () => void this.#load());
    this.#notice = h("p", { class: "error", testid: "feed-error", attrs: { role: "alert" } });
    this.#notice.hidden = true;
    this.el = h(
      "section",
      { class: "home", testid: "feed", attrs: { "data-state": "loading" } },
      h("header", { class: "view-header" }, h("h2", { text: "Home" }), h("span", { class: "muted", text: "posts by you and the people you follow" })),
      composer,
      this.#notice,
      this.#list,
      this.#more
    );
  }
  sb;
  users;
  el;
  #list;
  #more;
  #notice;
  #input;
  #post;
  #rows = /* @__PURE__ */ new Map();
  /** Offsets shown, descending (newest first). */
  #offsets = [];
  #before = null;
  #sub = null;
  #started = false;
  /** Loads the first page and subscribes (once per login: the feed stays live off-screen too). */
  async start() {
    if (this.#started) return;
    this.#started = true;
    const newest = await this.#load();
    if (newest === null) {
      this.#started = false;
      return;
    }
    this.#sub = this.sb.subscribe(`feed:${this.users.me.id}`, {
      since: newest,
      onMessage: (m) => this.#live(m),
      onError: (err) => this.#error(`The feed stopped: ${describe(err)}`)
    });
    this.#sub.on("caught_up", () => this.el.dataset.state = "live");
  }
  dispose() {
    this.#sub?.unsubscribe();
    this.el.remove();
  }
  focus() {
    this.#input.focus();
  }
  /** A page (the newest at first); resolves with the newest offset read, 0 for an empty feed, null on failure. */
  async #load() {
    this.#more.disabled = true;
    try {
      const page = await this.sb.api.feed({ before: this.#before ?? void 0, limit: PAGE2 });
      for (const item of page.items) this.#insert(item);
      const first = this.#before === null;
      this.#before = page.next_before;
      this.#more.hidden = page.next_before === null;
      this.#empty();
      return first ? page.items[0]?.offset ?? 0 : 0;
    } catch (err) {
      this.#error(`Could not load the feed: ${describe(err)}`);
      return null;
    } finally {
      this.#more.disabled = false;
    }
  }
  #live(m) {
    const data = m.data;
    if (data && typeof data === "object" && data.kind === "post" && data.post) this.#insert({ offset: m.offset, post: data.post });
    this.#empty();
  }
  #insert(item) {
    if (this.#rows.has(item.offset)) return;
    const row = this.#render(item.offset, item.post);
    let lo = 0;
    let hi = this.#offsets.length;
    while (lo < hi) {
      const mid = lo + hi >> 1;
      if (this.#offsets[mid] > item.offset) lo = mid + 1;
      else hi = mid;
    }
    const next = this.#offsets[lo];
    this.#list.insertBefore(row, next === void 0 ? null : this.#rows.get(next) ?? null);
    this.#offsets.splice(lo, 0, item.offset);
    this.#rows.set(item.offset, row);
  }
  #render(offset, post) {
    this.users.remember(post.author);
    return h(
      "li",
      { class: "post card", testid: "post", attrs: { "data-offset": offset, "data-post-id": post.id, "data-author": post.author.username } },
      h(
        "div",
        { class: "meta" },
        this.users.link(post.author.id, post.author.username),
        h("time", { class: "muted", text: clock(post.ts), attrs: { datetime: new Date(post.ts).toISOString() } })
      ),
      h("div", { class: "text", testid: "post-text" }, withMentions(textOf(post.data), this.users.me.username))
    );
  }
  async #create() {
    const text2 = this.#input.value.trim();
    if (text2 === "") return;
    this.#post.disabled = true;
    this.#notice.hidden = true;
    try {
      await this.sb.api.posts.create({ text: text2 });
      this.#input.value = "";
    } catch (err) {
      this.#error(`Not posted: ${describe(err)}`);
    } finally {
      this.#post.disabled = false;
    }
  }
  #empty() {
    const none = this.#rows.size === 0;
    let hint = this.#list.querySelector("li.empty");
    if (none && !hint) {
      hint = h("li", { class: "empty muted", testid: "feed-empty", text: "Nothing here yet: post something, or follow people." });
      this.#list.append(hint);
    } else if (!none) hint?.remove();
  }
  #error(text2) {
    this.#notice.textContent = text2;
    this.#notice.hidden = false;
  }
};

// src/notifications.ts
var RECOUNT_AFTER_MS = 750;
var Notifications = class {
  constructor(sb2, users, openRoom) {
    this.sb = sb2;
    this.users = users;
    this.openRoom = openRoom;
    this.#badge = h("span", { class: "badge", testid: "bell-count", text: "0" });
    this.#bell = h(
      "button",
      {
        class: "bell",
        testid: "bell",
        attrs: { type: "button", "aria-haspopup": "true", "aria-expanded": "false", "aria-label": "Notifications", "data-count": 0 },
        on: { click: () => this.#panel.hidden ? this.open() : this.close() }
      },
      icon("bell"),
      this.#badge
    );
    this.#list = h("ol", { class: "notifications", testid: "notif-list" });
    this.#notice = h("p", { class: "error" });
    this.#notice.hidden = true;
    this.#markAll = h("button", {
      class: "link",
      testid: "notif-mark-all",
      text: "Mark all read",
      attrs: { type: "button" },
      on: { click: () => void this.#markAllRead() }
    });
    this.#panel = h(
      "div",
      { class: "notif-panel card", testid: "notif-panel", attrs: { role: "dialog", "aria-label": "Notifications" } },
      h("header", { class: "row spread" }, h("h3", { text: "Notifications" }), this.#markAll),
      this.#notice,
      this.#list
    );
    this.#panel.hidden = true;
    this.el = h("div", { class: "notif" }, this.#bell, this.#panel);
    this.#setCount(0);
  }
  sb;
  users;
  openRoom;
  el;
  #bell;
  #badge;
  #panel;
  #list;
  #notice;
  #markAll;
  #rows = /* @__PURE__ */ new Map();
  #count = 0;
  #sub = null;
  #recount;
  #loaded = false;
  #onDocClick = (ev) => {
    if (!this.el.contains(ev.target)) this.close();
  };
  async start() {
    const sub = this.sb.subscribe(`user:${this.users.me.id}`, {
      resume: false,
      onMessage: (m) => this.#live(m)
    });
    this.#sub = sub;
    try {
      await sub.ready;
    } catch {
    }
    await this.#fetchCount();
  }
  dispose() {
    clearTimeout(this.#recount);
    document.removeEventListener("click", this.#onDocClick);
    this.#sub?.unsubscribe();
  }
  open() {
    this.#panel.hidden = false;
    this.#bell.setAttribute("aria-expanded", "true");
    document.addEventListener("click", this.#onDocClick);
    void this.#load();
  }
  close() {
    this.#panel.hidden = true;
    this.#bell.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", this.#onDocClick);
  }
  async #load() {
    this.#notice.hidden = true;
    try {
      const page = await this.sb.api.notifications.list({ limit: 50 });
      for (const n of page.notifications) this.#add(n, n.read);
      this.#loaded = true;
      this.#empty();
    } catch (err) {
      this.#notice.textContent = describe(err);
      this.#notice.hidden = false;
    }
  }
  async #fetchCount() {
    try {
      this.#setCount(await this.sb.api.notifications.unreadCount());
    } catch {
    }
  }
  #live(m) {
    const event = m.data;
    if (!event || typeof event !== "object") return;
    if (event.kind === "room_read") return;
    if (event.kind === "read") {
      this.#setCount(event.unread_count);
      for (const [offset, row] of this.#rows) {
        const id = row.dataset.id ?? "";
        if (event.all && (event.upto === void 0 || offset <= event.upto) || event.ids?.includes(id)) {
          this.#markRow(row, true);
        }
      }
      return;
    }
    this.#setCount(this.#count + 1);
    if (this.#loaded) {
      this.#add({ ...event, offset: m.offset, read: false }, false);
      this.#empty();
    }
    clearTimeout(this.#recount);
    this.#recount = setTimeout(() => void this.#fetchCount(), RECOUNT_AFTER_MS);
  }
  #add(n, read) {
    if (this.#rows.has(n.offset)) return;
    const row = h(
      "li",
      { class: "notification", testid: "notif-item", attrs: { "data-offset": n.offset, "data-kind": n.kind, "data-id": n.id } },
      h("div", { class: "what" }, ...this.#describe(n)),
      h("time", { class: "muted", text: clock(n.created_at) })
    );
    this.#markRow(row, read);
    const next = [...this.#rows.keys()].filter((o) => o < n.offset).sort((a, b) => b - a)[0];
    this.#list.insertBefore(row, next === void 0 ? null : this.#rows.get(next) ?? null);
    this.#rows.set(n.offset, row);
  }
  #describe(n) {
    const who = n.from ? this.users.link(n.from.id, n.from.username) : "someone";
    switch (n.kind) {
      case "follow":
        return [who, " followed you"];
      case "mention": {
        const room = h("button", {
          class: "link",
          text: `#${n.room}`,
          attrs: { type: "button" },
          on: {
            click: () => {
              this.close();
              this.openRoom(n.room);
            }
          }
        });
        return [who, " mentioned you in ", room, ": ", h("q", { class: "excerpt", testid: "notif-excerpt", text: n.message?.excerpt ?? "" })];
      }
      case "reply":
        return [who, " replied to your post: ", h("q", { class: "excerpt", text: textOfPost(n.reply?.data) })];
      case "reaction":
        return [who, ` reacted ${n.emoji} to your post`];
      default:
        return [who, ` (${String(n.kind)})`];
    }
  }
  #markRow(row, read) {
    row.classList.toggle("unread", !read);
    row.dataset.read = String(read);
  }
  async #markAllRead() {
    this.#markAll.disabled = true;
    try {
      const res = await this.sb.api.notifications.markRead({ all: true });
      this.#setCount(res.unread_count);
      for (const row of this.#rows.values()) this.#markRow(row, true);
    } catch (err) {
      this.#notice.textContent = describe(err);
      this.#notice.hidden = false;
    } finally {
      this.#markAll.disabled = false;
    }
  }
  #setCount(n) {
    this.#count = Math.max(0, n);
    this.#badge.textContent = this.#count > 99 ? "99+" : String(this.#count);
    this.#badge.hidden = this.#count === 0;
    this.#bell.dataset.count = String(this.#count);
    this.#bell.classList.toggle("has-unread", this.#count > 0);
    this.#bell.title = this.#count === 1 ? "1 unread notification" : `${this.#count} unread notifications`;
  }
  #empty() {
    const none = this.#rows.size === 0;
    const hint = this.#list.querySelector("li.empty");
    if (none && !hint) replace(this.#list, h("li", { class: "empty muted", text: "No notifications yet." }));
    else if (!none) hint?.remove();
  }
};
function textOfPost(data) {
  if (data && typeof data === "object" && typeof data.text === "string") return data.text;
  return "";
}

// src/rooms.ts
var ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
function roomsPanel(sb2, openRoom) {
  const list = h("ul", { class: "rooms", testid: "room-list" });
  const more = h("button", { class: "link", testid: "rooms-more", text: "More rooms", attrs: { type: "button" } });
  const status = h("p", { class: "error", testid: "rooms-error" });
  status.hidden = true;
  more.hidden = true;
  let after = null;
  let selected = null;
  let loading = null;
  const item = (room) => h(
    "li",
    {},
    h(
      "button",
      {
        class: "room-link",
        testid: "room-link",
        attrs: { type: "button", "data-room": room.name, title: room.private ? "private room" : "public room" },
        on: { click: () => openRoom(room.name) }
      },
      room.private ? h("span", { class: "hash private" }, icon("lock", "private")) : h("span", { class: "hash", text: "#" }),
      room.name,
      room.unread ? h("span", { class: "badge", testid: "room-unread", text: room.unread >= 1e3 ? "999+" : String(room.unread) }) : null
    )
  );
  const mark = () => {
    for (const b of list.querySelectorAll("button.room-link")) {
      b.classList.toggle("active", b.dataset.room?.toLowerCase() === selected?.toLowerCase());
    }
  };
  const load = async (reset) => {
    status.hidden = true;
    try {
      const page = await sb2.api.rooms.list({ after: reset ? void 0 : after ?? void 0, limit: 50 });
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
  const refresh = () => loading ??= load(true).finally(() => loading = null);
  more.addEventListener("click", () => void load(false));
  const name = h("input", {
    testid: "room-name",
    attrs: { placeholder: "room name", "aria-label": "Room name", maxlength: 64, required: true, pattern: "[A-Za-z0-9_.\\-]+" }
  });
  const isPrivate = h("input", { testid: "room-private", attrs: { type: "checkbox" } });
  const members = h("input", {
    testid: "room-members",
    attrs: { placeholder: "members: alice, bob", "aria-label": "Members (usernames)" }
  });
  members.disabled = true;
  isPrivate.addEventListener("change", () => members.disabled = !isPrivate.checked);
  const formError = h("p", { class: "error", testid: "room-form-error" });
  formError.hidden = true;
  const create = h("button", { testid: "room-create", text: "Create", attrs: { type: "submit" } });
  const open = h("button", { class: "secondary", testid: "room-open", text: "Open", attrs: { type: "button" } });
  const valid = () => {
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
            const room = await sb2.api.rooms.create({ name: n, private: isPrivate.checked, members: names });
            name.value = members.value = "";
            await refresh();
            openRoom(room.name);
          } catch (err) {
            formError.textContent = err instanceof SwitchboardError && err.code === "conflict" ? `${err.message} (use Open to join it)` : describe(err);
            formError.hidden = false;
          } finally {
            create.disabled = false;
          }
        }
      }
    },
    name,
    h("label", { class: "check" }, isPrivate, "private, members:"),
    members,
    formError,
    h("div", { class: "row" }, create, open)
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
    on: { click: () => void refresh() }
  });
  const el = h(
    "section",
    { class: "panel", testid: "rooms" },
    h("h2", {}, "Rooms ", reload),
    list,
    more,
    status,
    h("details", { class: "create-room", attrs: { open: true } }, h("summary", { testid: "room-form-toggle", text: "New room" }), form)
  );
  return {
    el,
    select(n) {
      selected = n;
      mark();
    },
    refresh
  };
}

// src/status.ts
function connectionIndicator(sb2) {
  const label = h("span", { class: "conn-label" });
  const el = h("span", { class: "conn", testid: "conn-state", attrs: { role: "status", "aria-live": "polite" } }, h("span", { class: "dot" }), label);
  let everConnected = false;
  const render = (change) => {
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
        const s = change.retryInMs === void 0 ? "" : ` (retry in ${Math.max(1, Math.round(change.retryInMs / 1e3))} s)`;
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
  render({ state: sb2.state });
  const off = sb2.on("state", render);
  return { el, dispose: off };
}

// src/app.ts
function parseRoute(hash) {
  const m = /^#\/room\/(.+)$/.exec(hash);
  if (m) {
    let room = m[1];
    try {
      room = decodeURIComponent(room);
    } catch {
      return { view: "home" };
    }
    if (ROOM_NAME.test(room)) return { view: "room", room };
  }
  return { view: "home" };
}
function roomHash(room) {
  return `#/room/${encodeURIComponent(room)}`;
}
var App = class {
  constructor(sb2, me, logout) {
    this.sb = sb2;
    this.logout = logout;
    this.#users = new Users(sb2, me);
    this.#feed = new FeedView(sb2, this.#users);
    const go = (room) => {
      location.hash = roomHash(room);
    };
    this.#users.openRoom = go;
    this.#notifications = new Notifications(sb2, this.#users, go);
    this.#rooms = roomsPanel(sb2, go);
    const status = connectionIndicator(sb2);
    this.#cleanup.push(status.dispose);
    this.#toast = h("div", { class: "toast", testid: "toast", attrs: { role: "alert" } });
    this.#toast.hidden = true;
    this.#cleanup.push(sb2.on("error", (err) => this.toast(describe(err))));
    const header = h(
      "header",
      { class: "top-bar" },
      h("div", { class: "brand", text: "Switchboard" }),
      status.el,
      h("div", { class: "spacer" }),
      this.#notifications.el,
      h("span", { class: "me", testid: "me", text: me.username }),
      h("button", { class: "secondary", testid: "logout", text: "Log out", attrs: { type: "button" }, on: { click: () => this.logout() } })
    );
    this.#home = h("button", {
      class: "nav-link",
      testid: "nav-home",
      attrs: { type: "button" },
      on: { click: () => location.hash = "#/home" }
    }, icon("home"), "Home");
    const sidebar = h(
      "nav",
      { class: "sidebar" },
      h("section", { class: "panel" }, this.#home),
      this.#rooms.el,
      peoplePanel(this.#users)
    );
    this.#main = h("main", { class: "content" });
    this.el = h("div", { class: "shell", testid: "shell", attrs: { "data-user": me.username } }, header, h("div", { class: "body" }, sidebar, this.#main), this.#toast);
    const onHash = () => this.route(parseRoute(location.hash));
    window.addEventListener("hashchange", onHash);
    this.#cleanup.push(() => window.removeEventListener("hashchange", onHash));
  }
  sb;
  logout;
  el;
  #main;
  #toast;
  #users;
  #feed;
  #notifications;
  #rooms;
  #home;
  #cleanup = [];
  #chat = null;
  /** Starts the live parts (the bell, the feed) and shows the current route. */
  start() {
    this.route(parseRoute(location.hash));
    void this.#notifications.start();
    void this.#feed.start();
    void this.#rooms.refresh();
    void this.#users.loadFollowing().catch(() => void 0);
  }
  route(route) {
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
    replace(this.#main, this.#feed.el);
    this.#rooms.select(null);
    this.#home.classList.add("active");
    document.title = "Home · Switchboard";
  }
  toast(text2) {
    this.#toast.textContent = text2;
    this.#toast.hidden = false;
    clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => this.#toast.hidden = true, 6e3);
  }
  #toastTimer;
  dispose() {
    this.#chat?.dispose();
    this.#feed.dispose();
    this.#notifications.dispose();
    clearTimeout(this.#toastTimer);
    for (const off of this.#cleanup.splice(0)) off();
    this.el.remove();
  }
};

// src/auth-view.ts
function authView(sb2, notice, onLoggedIn) {
  const username = h("input", {
    testid: "auth-username",
    attrs: { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32, pattern: "[A-Za-z0-9_.\\-]+" }
  });
  const password = h("input", {
    testid: "auth-password",
    attrs: { name: "password", type: "password", autocomplete: "current-password", required: true, minlength: 8, maxlength: 128 }
  });
  const error = h("p", { class: "error", testid: "auth-error", attrs: { role: "alert" } });
  error.hidden = true;
  const login = h("button", { testid: "auth-login", text: "Log in", attrs: { type: "submit" } });
  const register = h("button", { class: "secondary", testid: "auth-register", text: "Create account", attrs: { type: "button" } });
  const busy = (on) => {
    login.disabled = register.disabled = on;
  };
  const fail = (err) => {
    error.textContent = explain(err);
    error.hidden = false;
    busy(false);
  };
  const go = async (create) => {
    if (!form.reportValidity()) return;
    error.hidden = true;
    busy(true);
    try {
      if (create) await sb2.register(username.value, password.value);
      await sb2.login(username.value, password.value);
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
        }
      }
    },
    h("h1", { text: "Switchboard" }),
    h("p", { class: "muted", text: "Chat rooms, a home feed and notifications, live." }),
    notice ? h("p", { class: "notice", testid: "auth-notice", text: notice }) : null,
    h("label", {}, "Username", username),
    h("label", {}, "Password", password),
    error,
    h("div", { class: "row" }, login, register)
  );
  register.addEventListener("click", () => void go(true));
  queueMicrotask(() => username.focus());
  return h("div", { class: "auth-page" }, form);
}
function explain(err) {
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

// src/session.ts
function createClient() {
  return new Switchboard({
    // The page is served by the server (or the balancer in front of it): same origin.
    url: location.origin,
    tokenStore: new StorageTokenStore(localStorage, "switchboard.demo.tokens"),
    offsetStore: new StorageOffsetStore(localStorage, "switchboard.demo.offset."),
    // A page someone is looking at: come back quickly after a restart (at most 5 s apart).
    backoff: { initialMs: 500, maxMs: 5e3 }
  });
}

// src/main.ts
var root = document.getElementById("app");
var sb = createClient();
var app = null;
var NOTICES = {
  logout: null,
  revoked: "You were logged out: the session was ended (by a logout elsewhere, say).",
  refresh_failed: "Your session has expired: log in again."
};
function wire(client) {
  client.on("logged_out", ({ reason }) => {
    if (client !== sb) return;
    app?.dispose();
    app = null;
    client.close();
    sb = createClient();
    wire(sb);
    showAuth(NOTICES[reason]);
  });
}
function showApp() {
  const me = sb.user;
  if (!me) {
    showAuth(null);
    return;
  }
  app = new App(sb, me, () => {
    sb.logout().catch(() => void 0);
  });
  replace(root, app.el);
  app.start();
}
function showAuth(notice) {
  document.title = "Switchboard";
  replace(root, authView(sb, notice, showApp));
}
wire(sb);
if (sb.user) showApp();
else showAuth(null);
