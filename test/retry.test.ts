// The one retry discipline of the Kubernetes and registry clients, on a fake clock.
import { describe, expect, it } from 'vitest';
import { Abandoned, backoffDelay, retrying, type FailureClass, type RetryOptions } from '../src/retry.ts';
import { FakeClock, settle } from './fixtures/clock.ts';

class Failure extends Error {
  readonly failure: FailureClass;
  constructor(failure: FailureClass) {
    super('failed');
    this.failure = failure;
  }
}
const refused = (retryAfterMs?: number) => new Failure({ retryable: true, mayHaveApplied: false, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
const lost = () => new Failure({ retryable: true, mayHaveApplied: true });
const fatal = () => new Failure({ retryable: false, mayHaveApplied: false });

function options(clock: FakeClock, extra: Partial<RetryOptions> = {}): RetryOptions {
  return {
    retries: 5, backoff: { baseMs: 100, maxMs: 1_000, maxRetryAfterMs: 30_000, random: () => 0.5 }, clock, write: false,
    classify: (err) => (err as Failure).failure, ...extra,
  };
}

/** A request that answers each attempt from a script: an error to throw, or a value. */
function scripted<T>(answers: Array<Error | T>) {
  const attempts: Array<{ index: number; earlierMayHaveApplied: boolean }> = [];
  return {
    attempts,
    run: async (a: { index: number; earlierMayHaveApplied: boolean }) => {
      attempts.push({ index: a.index, earlierMayHaveApplied: a.earlierMayHaveApplied });
      const answer = answers[Math.min(a.index, answers.length - 1)]!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

describe('backoffDelay', () => {
  it('is full jitter under a doubling ceiling, and a Retry-After is a capped floor', () => {
    const policy = { baseMs: 100, maxMs: 1_000, maxRetryAfterMs: 30_000, random: () => 0.999 };
    expect([0, 1, 2, 3, 4, 5].map((r) => backoffDelay(policy, r))).toEqual([100, 200, 400, 799, 999, 999]);
    expect(backoffDelay({ ...policy, random: () => 0 }, 3)).toBe(0);
    expect(backoffDelay({ ...policy, random: () => 0 }, 0, 5_000)).toBe(5_000);
    expect(backoffDelay({ ...policy, random: () => 0 }, 0, 3_600_000)).toBe(30_000);
  });
});

describe('retrying', () => {
  it('retries what is retryable with the backoff (Retry-After honoured) and returns the first success', async () => {
    const clock = new FakeClock();
    const request = scripted<string>([refused(), refused(2_000), 'ok']);
    const result = retrying(request.run, options(clock));
    await clock.advance(10_000);
    expect(await result).toBe('ok');
    expect(clock.sleeps).toEqual([50, 2_000]);
  });

  it('gives up after the retries with the error onGiveUp makes, and never retries a fatal error', async () => {
    const clock = new FakeClock();
    const spent = retrying(scripted([refused()]).run, { ...options(clock, { retries: 2 }), onGiveUp: (_e, n) => new Error(`gave up after ${n} attempts`) });
    const caught = spent.catch((e: unknown) => e);
    await clock.advance(10_000);
    expect((await caught as Error).message).toBe('gave up after 3 attempts');

    const once = scripted([fatal(), 'never']);
    await expect(retrying(once.run, options(clock))).rejects.toBeInstanceOf(Failure);
    expect(once.attempts).toHaveLength(1);
  });

  it('does not send at all once stopped, and a read stops in its backoff at once', async () => {
    const clock = new FakeClock();
    const stopped = AbortSignal.abort();
    const never = scripted(['x']);
    await expect(retrying(never.run, options(clock, { signal: stopped }))).rejects.toEqual(new Abandoned(false));
    expect(never.attempts).toHaveLength(0);

    const halt = new AbortController();
    const read = scripted<string>([refused(30_000), 'ok']);
    const result = retrying(read.run, options(clock, { signal: halt.signal })).catch((e: unknown) => e);
    await settle();
    expect(clock.pending).toBe(1); // waiting out the Retry-After
    halt.abort();
    expect(await result).toBeInstanceOf(Abandoned);
    expect(read.attempts).toHaveLength(1);
  });

  it('retries a write that may have been applied to a known outcome after the stop, without waiting out Retry-After', async () => {
    const clock = new FakeClock();
    const halt = new AbortController();
    const write = scripted<string>([lost(), refused(30_000), 'deleted']);
    const result = retrying(write.run, options(clock, { signal: halt.signal, write: true }));
    await settle();
    halt.abort();
    await clock.advance(1_000);
    expect(await result).toBe('deleted');
    expect(write.attempts).toEqual([
      { index: 0, earlierMayHaveApplied: false },
      { index: 1, earlierMayHaveApplied: true },
      { index: 2, earlierMayHaveApplied: true },
    ]);
    expect(clock.sleeps.every((ms) => ms <= 100)).toBe(true);
  });

  it('drops a write every attempt of which was refused (429) once stopped: it was not carried out', async () => {
    const clock = new FakeClock();
    const halt = new AbortController();
    const write = scripted<string>([refused(), 'deleted']);
    const result = retrying(write.run, options(clock, { signal: halt.signal, write: true })).catch((e: unknown) => e);
    await settle();
    halt.abort();
    expect(await result).toEqual(new Abandoned(true));
    expect(write.attempts).toHaveLength(1);
  });
});
