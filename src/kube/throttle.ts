import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Client-side rate limit in the manner of client-go's token bucket (`--qps`, `--burst`):
 * a burst may go at once, the steady rate is `qps`. It protects the API server from a
 * cleanup of tens of thousands of Jobs.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(qps: number, burst: number) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`qps must be > 0 and burst >= 1 (got ${qps}, ${burst})`);
    this.#qps = qps;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = performance.now();
  }

  /** Resolves when the caller may send one request. Callers are served in order. */
  take(): Promise<void> {
    const turn = this.#queue.then(() => this.#wait());
    this.#queue = turn;
    return turn;
  }

  async #wait(): Promise<void> {
    this.#refill();
    if (this.#tokens < 1) {
      await sleep(((1 - this.#tokens) / this.#qps) * 1000);
      this.#refill();
    }
    this.#tokens -= 1;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
  }
}
