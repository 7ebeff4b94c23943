// Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and
// the exponential cap), so that thousands of clients dropped at once by a dying node come back
// spread over the window instead of in one stampede.

export interface BackoffOptions {
  /** The cap of the first retry's delay. Default 500 ms. */
  initialMs?: number;
  /** The largest cap. Default 30 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** The jitter's source of randomness in [0, 1). Default `Math.random`. */
  random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  #attempt = 0;

  readonly #random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.#random = opts.random ?? Math.random;
    this.#initial = opts.initialMs ?? 500;
    this.#max = opts.maxMs ?? 30_000;
    this.#factor = opts.factor ?? 2;
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** The next delay, and one more attempt counted. */
  next(): number {
    const cap = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 64);
    return Math.floor(this.#random() * cap);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
