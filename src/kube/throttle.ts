// How many API requests go at once. By default the limit adapts to what the server admits
// (kube-apiserver's API Priority and Fairness protects it, not a client QPS): it grows while
// latency holds and no 429 comes back, and shrinks multiplicatively on a 429 or rising latency:
// it settles where the requests in flight are being served, not waiting in a queue.
import { Abandoned, realClock, type Clock } from '../retry.ts';

export interface LimiterOptions {
  /** The most requests in flight (`--concurrency`). */
  max: number;
  /** Where the limit starts; default min(8, max). */
  initial?: number;
  /** Optional ceiling on the request rate (`--qps`, `--burst`); none by default. */
  qps?: number;
  burst?: number;
  clock?: Clock;
}

/** What a finished request tells the limiter. */
export interface Feedback {
  /** The server pushed back (429). */
  throttled?: boolean;
  /** Time from sending to the answer; only requests of one kind of work (not lists) should report it. */
  latencyMs?: number;
}

export interface Slot {
  release(feedback?: Feedback): void;
}

interface Waiter {
  resolve(slot: Slot): void;
  reject(err: Error): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** Multiplicative decrease on congestion (TCP's 0.5 is harsh for a server that queues fairly). */
const DECREASE = 0.7;
/**
 * How many of the requests in flight may be waiting rather than being served (TCP Vegas's
 * alpha and beta). By Little's law, `limit × (1 − baseline / recent latency)` of them are
 * waiting: in the server's queue, or in ours when the job itself is the bottleneck. Below the
 * low mark a higher limit would still buy throughput, so it grows; above the high mark more in
 * flight only adds latency, so it shrinks; in between it holds. Measured on the bench at 10k
 * Jobs: 2 and 4 held 12 in flight at 63% of C/L but 740 deletes/s; 3 and 6 held 15 at 60% and
 * 916/s; 4 and 8 gained nothing more (920/s, 55%).
 */
const QUEUED_LOW = 3;
const QUEUED_HIGH = 6;
/** The baseline is the lowest latency of the last few windows, so it follows a server that changed. */
const WINDOW = 200;
const WINDOWS = 10;
/**
 * Latency measured at our own steady concurrency would drift up into the baseline and let the
 * limit creep up with it. So every this many answers the limit is halved for two rounds of
 * answers (BBR's ProbeRTT), and the windows see what an answer costs with less in flight.
 */
const PROBE_EVERY = 1000;
/** Smoothing of the recent latency (about the last 10 answers). */
const RECENT = 0.1;

export class AdaptiveLimiter {
  readonly #max: number;
  readonly #clock: Clock;
  readonly #bucket: RateCeiling | undefined;
  #limit: number;
  #inFlight = 0;
  readonly #queue: Waiter[] = [];
  /** Bumped on every decrease: only requests sent at the current limit may shrink it again. */
  #epoch = 0;
  /** Until the first congestion signal the limit doubles per round trip; then it grows by one. */
  #slowStart = true;
  #recentMs: number | undefined;
  /** Answers since the last decrease: the queue a decrease drains is judged afresh. */
  #sinceDecrease = 0;
  #windowMin = Infinity;
  #answers = 0;
  /** While `#answers` is below this, the limit is halved to measure the baseline afresh. */
  #probeUntil = 0;
  #windowCount = 0;
  readonly #mins: number[] = [];
  /** Counters for the run's report. */
  throttled = 0;
  peakLimit: number;
  #targetSum = 0;
  #targetSamples = 0;

  constructor(options: LimiterOptions) {
    if (!(options.max >= 1)) throw new RangeError(`concurrency must be >= 1 (got ${options.max})`);
    this.#max = Math.floor(options.max);
    this.#clock = options.clock ?? realClock;
    this.#limit = Math.min(this.#max, Math.max(1, options.initial ?? 8));
    this.peakLimit = this.#limit;
    this.#bucket = options.qps ? new RateCeiling(options.qps, options.burst ?? Math.max(1, options.qps), this.#clock) : undefined;
  }

  /** The requests that may be in flight now (whole requests). */
  get limit(): number {
    const target = Math.floor(this.#limit);
    return this.#answers < this.#probeUntil ? Math.max(1, Math.floor(target / 2)) : target;
  }

  /** The limit the adaptation has reached, outside the short probes of the baseline. */
  get target(): number {
    return Math.floor(this.#limit);
  }

  /** The target averaged over the answers so far: the concurrency the run settled on. */
  get meanTarget(): number {
    return this.#targetSamples === 0 ? this.target : this.#targetSum / this.#targetSamples;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Resolves with a slot when a request may go, in order of asking (`first`: ahead of the
   * queue). Rejects with Abandoned at once when `signal` fires while waiting: a stopped run
   * never waits for a turn it will not use.
   */
  async acquire(signal?: AbortSignal, options: { first?: boolean } = {}): Promise<Slot> {
    if (signal?.aborted) throw new Abandoned(false);
    const slot = await (this.#inFlight < this.limit && this.#queue.length === 0 ? Promise.resolve(this.#grant()) : this.#wait(signal, options.first ?? false));
    if (this.#bucket) {
      try {
        await this.#bucket.take(signal);
      } catch (err) {
        slot.release();
        throw err;
      }
    }
    return slot;
  }

  #wait(signal: AbortSignal | undefined, first: boolean): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(new Abandoned(false));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      if (first) this.#queue.unshift(waiter);
      else this.#queue.push(waiter);
    });
  }

  #grant(): Slot {
    this.#inFlight++;
    const epoch = this.#epoch;
    let released = false;
    return {
      release: (feedback) => {
        if (released) return;
        released = true;
        // A limit that is not used is not evidence that a higher one would be fine: grow only
        // while at least half of it is in use or requests wait for it.
        const saturated = this.#inFlight * 2 >= this.limit || this.#queue.length > 0;
        this.#inFlight--;
        if (feedback) this.#learn(feedback, epoch, saturated);
        this.#dispatch();
      },
    };
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.limit) {
      const waiter = this.#queue.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.#grant());
    }
  }

  #learn(feedback: Feedback, epoch: number, saturated: boolean): void {
    if (feedback.throttled) {
      this.throttled++;
      this.#decrease(epoch);
      return;
    }
    if (feedback.latencyMs === undefined) return;
    this.#targetSum += this.#limit;
    this.#targetSamples++;
    const baseline = this.#observe(feedback.latencyMs);
    if (this.#answers % PROBE_EVERY === 0) this.#probeUntil = this.#answers + 2 * this.target;
    if (this.#answers < this.#probeUntil) return;
    const queued = this.#limit * (1 - baseline / this.#recentMs!);
    // After a decrease, wait for half a limit of answers: the first ones still carry the queue it drains.
    if (queued > QUEUED_HIGH && this.#sinceDecrease >= this.#limit / 2) {
      this.#decrease(epoch);
    } else if (queued < QUEUED_LOW && saturated && this.#limit < this.#max) {
      this.#limit = Math.min(this.#max, this.#limit + (this.#slowStart ? 1 : 1 / this.#limit));
      this.peakLimit = Math.max(this.peakLimit, this.limit);
    }
  }

  #decrease(epoch: number): void {
    if (epoch !== this.#epoch) return;
    this.#epoch++;
    this.#slowStart = false;
    this.#limit = Math.max(1, this.#limit * DECREASE);
    this.#sinceDecrease = 0;
  }

  /** Feeds one latency sample; returns the baseline (the lowest latency of recent windows). */
  #observe(latencyMs: number): number {
    this.#sinceDecrease++;
    this.#answers++;
    this.#recentMs = this.#recentMs === undefined ? latencyMs : this.#recentMs * (1 - RECENT) + latencyMs * RECENT;
    this.#windowMin = Math.min(this.#windowMin, latencyMs);
    if (++this.#windowCount >= WINDOW) {
      this.#mins.push(this.#windowMin);
      if (this.#mins.length > WINDOWS) this.#mins.shift();
      this.#windowMin = Infinity;
      this.#windowCount = 0;
    }
    return Math.min(this.#windowMin, ...this.#mins);
  }
}

/**
 * An optional ceiling on the request rate, in the manner of client-go's token bucket (a burst
 * may go at once, the steady rate is `qps`), as a reservation schedule so that a waiter whose
 * signal fires leaves at once.
 */
export class RateCeiling {
  readonly #intervalMs: number;
  readonly #allowanceMs: number;
  readonly #clock: Clock;
  /** When the bucket would be full again. */
  #tat: number;

  constructor(qps: number, burst: number, clock: Clock = realClock) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`qps must be > 0 and burst >= 1 (got ${qps}, ${burst})`);
    this.#intervalMs = 1000 / qps;
    this.#allowanceMs = (Math.floor(burst) - 1) * this.#intervalMs;
    this.#clock = clock;
    this.#tat = clock.now();
  }

  async take(signal?: AbortSignal): Promise<void> {
    const now = this.#clock.now();
    const sendAt = Math.max(now, this.#tat - this.#allowanceMs);
    this.#tat = Math.max(this.#tat, now) + this.#intervalMs;
    if (sendAt > now) {
      try {
        await this.#clock.sleep(sendAt - now, signal);
      } catch {
        throw new Abandoned(false);
      }
    }
  }
}
