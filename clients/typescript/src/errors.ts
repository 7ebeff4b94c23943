// One error type for everything the SDK rejects with. `code` is the server's code (the one table
// of docs/PROTOCOL.md, shared by HTTP and WebSocket) or one of the SDK's own, so callers switch on
// a string union instead of parsing messages.

/** Codes the server sends, on either transport. */
export type ServerErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "unavailable"
  // HTTP only
  | "conflict"
  | "unprocessable"
  | "method_not_allowed"
  | "internal";

/** Codes the SDK itself produces. */
export type ClientErrorCode =
  /** No reply within the request timeout; for a publish the outcome is unknown. */
  | "timeout"
  /** The socket closed before the reply arrived (requests other than publishes). */
  | "disconnected"
  /** The offline outbox is full: the publish was not queued. */
  | "outbox_full"
  /** The client was closed (or logged out) while the request waited. */
  | "closed"
  /** A network failure before any HTTP answer. */
  | "network"
  /** The server answered something that is not the protocol (a proxy's HTML page, say). */
  | "protocol";

export type ErrorCode = ServerErrorCode | ClientErrorCode;

const SERVER_CODES: ReadonlySet<string> = new Set<ServerErrorCode>([
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
  "internal",
]);

export class SwitchboardError extends Error {
  override readonly name = "SwitchboardError";
  readonly code: ErrorCode;
  /** The HTTP status, for errors from the REST API. */
  readonly status: number | undefined;
  /** The channel a subscription ended on, for errors that end one. */
  readonly channel: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { status?: number; channel?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
    this.channel = opts.channel;
  }

  /** True for failures worth retrying later (the server said so, or the network failed). */
  get retryable(): boolean {
    return (
      this.code === "rate_limited" ||
      this.code === "unavailable" ||
      this.code === "timeout" ||
      this.code === "disconnected" ||
      this.code === "network"
    );
  }

  /** An `error` frame's code and message. Unknown codes (a newer server) become `bad_request`. */
  static fromFrame(frame: { code: string; message: string; channel?: string }): SwitchboardError {
    return new SwitchboardError(asServerCode(frame.code), frame.message, { channel: frame.channel });
  }
}

export function asServerCode(code: string): ServerErrorCode {
  return SERVER_CODES.has(code) ? (code as ServerErrorCode) : "bad_request";
}

/** The HTTP status's code in the server's table, for answers without a JSON body. */
export function codeOfStatus(status: number): ServerErrorCode {
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
