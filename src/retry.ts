// One retry discipline for every remote call of the job (Kubernetes API and OCI registries):
// exponential backoff with full jitter, a server's Retry-After honoured but capped, the
// caller's stop honoured everywhere, and a write that was sent retried to a known outcome.
import { setTimeout as sleep } from 'node:timers/promises';

/** Time as the retry loop and the limiter see it; tests inject a fake one instead of sleeping. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`; rejects at once when `signal` fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined),
};

export interface BackoffPolicy {
  /** First backoff ceiling; it doubles per retry up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /** A server's Retry-After is waited for, but never longer than this (a bogus hour must not stall the run). */
  maxRetryAfterMs: number;
  /** Uniform in [0, 1); tests make it deterministic. */
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 10_000, maxRetryAfterMs: 30_000 };

/**
 * "Full jitter": uniform in [0, min(max, base·2^retry)], which spreads a crowd of clients that
 * failed together. A server's Retry-After is a floor (capped): the server said when to come back.
 */
export function backoffDelay(policy: BackoffPolicy, retry: number, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** retry);
  const jittered = (policy.random ?? Math.random)() * ceiling;
  const floor = Math.min(policy.maxRetryAfterMs, Math.max(0, retryAfterMs ?? 0));
  return Math.round(Math.max(floor, jittered));
}

/** How one failed attempt bears on the next. */
export interface FailureClass {
  /** A retry may cure it (throttling, server trouble, a lost connection). */
  retryable: boolean;
  /** The server may have carried the request out all the same (no answer, 500/502/504). */
  mayHaveApplied: boolean;
  retryAfterMs?: number;
}

/** The caller stopped (budget, SIGTERM, lost lock) and the request is known not to have been carried out. */
export class Abandoned extends Error {
  override readonly name = 'Abandoned';
  /** Whether at least one attempt was sent (and refused, or was a read). */
  readonly sent: boolean;
  constructor(sent: boolean) {
    super(sent ? 'stopped while retrying' : 'stopped before it was sent');
    this.sent = sent;
  }
}

export interface Attempt {
  /** 0 for the first. */
  index: number;
  /** An earlier attempt may have been applied: a 404/409 may then answer our own attempt. */
  earlierMayHaveApplied: boolean;
  /** Abort the request in flight with this: set for reads, never for writes (their answer matters). */
  signal: AbortSignal | undefined;
  /** Drop the attempt with this while it waits for its turn (unset when it must go to a known outcome). */
  dropSignal: AbortSignal | undefined;
}

export interface RetryOptions {
  retries: number;
  backoff: BackoffPolicy;
  clock?: Clock;
  /**
   * The caller's stop. A read stops at once, even in flight. A write is not sent once it
   * fires; a write already sent is retried only while an earlier attempt may have been
   * applied (then it is retried to a known outcome, so that an applied delete is never left
   * without its audit line); a write every attempt of which was refused (429, 503) stops.
   */
  signal?: AbortSignal | undefined;
  write: boolean;
  classify(err: unknown): FailureClass;
  onRetry?(err: unknown, retry: number, delayMs: number): void;
  /** The error to throw when the retries are spent; gets the attempts made. */
  onGiveUp?(err: unknown, attempts: number): unknown;
}

export async function retrying<T>(run: (attempt: Attempt) => Promise<T>, options: RetryOptions): Promise<T> {
  const { signal, write, classify } = options;
  const clock = options.clock ?? realClock;
  let mayHaveApplied = false;
  /** Whether the caller's stop may drop the request now. */
  const droppable = (index: number) => !write || index === 0 || !mayHaveApplied;
  for (let index = 0; ; index++) {
    if (signal?.aborted && droppable(index)) throw new Abandoned(index > 0);
    const attempt: Attempt = { index, earlierMayHaveApplied: mayHaveApplied, signal: write ? undefined : signal, dropSignal: droppable(index) ? signal : undefined };
    try {
      return await run(attempt);
    } catch (err) {
      if (err instanceof Abandoned) throw err;
      if (signal?.aborted && !write) throw new Abandoned(true);
      const failure = classify(err);
      mayHaveApplied ||= failure.mayHaveApplied;
      if (!failure.retryable) throw err;
      if (index >= options.retries) throw options.onGiveUp ? options.onGiveUp(err, index + 1) : err;
      const stopping = signal?.aborted === true;
      if (stopping && droppable(index + 1)) throw new Abandoned(true);
      // Retrying to a known outcome after a stop: no Retry-After wait, the shortest backoff.
      const delayMs = stopping ? backoffDelay(options.backoff, 0) : backoffDelay(options.backoff, index, failure.retryAfterMs);
      options.onRetry?.(err, index + 1, delayMs);
      try {
        await clock.sleep(delayMs, droppable(index + 1) ? signal : undefined);
      } catch {
        throw new Abandoned(true);
      }
    }
  }
}
