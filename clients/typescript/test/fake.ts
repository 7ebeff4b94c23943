// A scripted stand-in for the server's socket, for the behaviours a real server will not show on
// demand: a gap in a subscription, a node that closes every connection right after accepting it.

import { Switchboard, type SwitchboardOptions } from "../src/index.js";
import type { ClientFrame, ServerFrame } from "../src/types.js";

type Script = (socket: FakeSocket) => void;

export class FakeSocket {
  static script: Script = () => undefined;
  static opened: FakeSocket[] = [];

  binaryType = "arraybuffer";
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: ClientFrame[] = [];
  onFrame: (frame: ClientFrame) => void = () => undefined;
  readonly openedAt = Date.now();

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.opened.push(this);
    setTimeout(() => {
      this.readyState = 1;
      FakeSocket.script(this);
      this.onopen?.({});
    }, 0);
  }

  send(data: string): void {
    const frame = JSON.parse(data) as ClientFrame;
    this.sent.push(frame);
    this.onFrame(frame);
  }

  /** Sends a server frame to the client. */
  push(frame: ServerFrame): void {
    if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
  }

  close(code = 1000, reason = ""): void {
    this.serverClose(code, reason);
  }

  /** The server closes the socket. */
  serverClose(code: number, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
}

/** Acks `auth` (and anything the test does not handle) like a server would. */
export function ackAuth(socket: FakeSocket, handle: (frame: ClientFrame) => boolean = () => false): void {
  socket.onFrame = (frame) => {
    if (handle(frame) || frame.id === undefined) return;
    socket.push({ type: "ack", id: frame.id, ...(frame.type === "auth" ? { user: { id: "u1", username: "alice" } } : {}) });
  };
}

/** A client logged in with made-up tokens, talking to FakeSocket. */
export function fakeClient(opts: Partial<SwitchboardOptions> = {}): Switchboard {
  FakeSocket.opened = [];
  const sb = new Switchboard({
    url: "http://fake.invalid",
    WebSocket: FakeSocket as unknown as SwitchboardOptions["WebSocket"],
    fetch: (() => Promise.reject(new Error("no HTTP in fake tests"))) as typeof fetch,
    ...opts,
  });
  sb.auth.store.set({
    accessToken: "token",
    refreshToken: "refresh",
    expiresAt: Date.now() + 3_600_000,
    user: { id: "u1", username: "alice" },
  });
  return sb;
}
