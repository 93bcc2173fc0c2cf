// An API Priority and Fairness-like capacity model, for benchmarks and adaptivity tests: at
// most `seatsPerUser` requests of one user execute at once, the next `queueLength` wait in a
// FIFO queue (at most `queueWaitMs`), and the rest are refused with 429 in kube-apiserver's
// words and shape. (kube-apiserver: staging/src/k8s.io/apiserver/pkg/server/filters/
// priority-and-fairness.go and maxinflight.go, tooManyRequests: Retry-After, then http.Error's
// text/plain body.) Off unless configured; long-running watches are not counted, as in APF.

export interface FlowControlOptions {
  /** Requests of one user executing at once (APF: the priority level's seats, per flow here). */
  seatsPerUser: number;
  /** Requests of one user waiting for a seat; beyond it, 429 at once. */
  queueLength: number;
  /** A queued request still without a seat after this long is refused with 429 (APF: 15 s by default). */
  queueWaitMs?: number;
  /** The Retry-After header of a 429 (kube-apiserver sends 1). */
  retryAfterSeconds?: number;
}

interface Flow {
  executing: number;
  /** Waiters, woken with their seat (handed over directly, so nobody overtakes them) or false. */
  queue: Array<(seat: (() => void) | false) => void>;
}

export class FlowControl {
  readonly #options: Required<FlowControlOptions>;
  readonly #flows = new Map<string, Flow>();
  /** What happened, for a bench's report. */
  readonly stats = { admitted: 0, queued: 0, rejected: 0, peakExecuting: 0 };

  constructor(options: FlowControlOptions) {
    this.#options = { queueWaitMs: 15_000, retryAfterSeconds: 1, ...options };
  }

  get retryAfterSeconds(): number {
    return this.#options.retryAfterSeconds;
  }

  /** Resolves with the function that frees the seat once the answer is sent, or undefined: refuse with 429. */
  async admit(user: string): Promise<(() => void) | undefined> {
    let flow = this.#flows.get(user);
    if (!flow) this.#flows.set(user, (flow = { executing: 0, queue: [] }));
    if (flow.executing < this.#options.seatsPerUser && flow.queue.length === 0) {
      flow.executing++;
      return this.#seat(flow);
    }
    if (flow.queue.length >= this.#options.queueLength) {
      this.stats.rejected++;
      return undefined;
    }
    this.stats.queued++;
    const queue = flow.queue;
    const seat = await new Promise<(() => void) | false>((resolve) => {
      const wake = (given: (() => void) | false) => {
        clearTimeout(timer);
        resolve(given);
      };
      const timer = setTimeout(() => {
        queue.splice(queue.indexOf(wake), 1);
        resolve(false);
      }, this.#options.queueWaitMs);
      queue.push(wake);
    });
    if (!seat) this.stats.rejected++;
    return seat || undefined;
  }

  /** A seat already counted in `executing`; freeing it hands it to the next waiter, if any. */
  #seat(flow: Flow): () => void {
    this.stats.admitted++;
    this.stats.peakExecuting = Math.max(this.stats.peakExecuting, flow.executing);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      const next = flow.queue.shift();
      if (next) next(this.#seat(flow));
      else flow.executing--;
    };
  }
}
