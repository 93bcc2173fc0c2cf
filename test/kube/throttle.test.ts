// The adaptive concurrency limit and the optional rate ceiling, on a fake clock.
import { describe, expect, it } from 'vitest';
import { Abandoned } from '../../src/retry.ts';
import { AdaptiveLimiter, RateCeiling, type Slot } from '../../src/kube/throttle.ts';
import { FakeClock, settle } from '../fixtures/clock.ts';

/** Runs `n` rounds in which every slot up to the limit is taken, then released with `latencyMs`. */
async function rounds(limiter: AdaptiveLimiter, n: number, latencyMs: number): Promise<void> {
  for (let r = 0; r < n; r++) {
    const slots: Slot[] = [];
    for (let i = 0; i < limiter.limit; i++) slots.push(await limiter.acquire());
    for (const s of slots) s.release({ latencyMs });
  }
}

describe('AdaptiveLimiter', () => {
  it('grows while latency holds, up to the maximum', async () => {
    const limiter = new AdaptiveLimiter({ max: 40, initial: 4 });
    await rounds(limiter, 3, 10);
    expect(limiter.limit).toBeGreaterThanOrEqual(12); // slow start: +1 per request of a busy round
    await rounds(limiter, 10, 10);
    expect(limiter.limit).toBe(40);
  });

  it('does not grow a limit it does not use', async () => {
    const limiter = new AdaptiveLimiter({ max: 40, initial: 4 });
    for (let i = 0; i < 100; i++) (await limiter.acquire()).release({ latencyMs: 10 });
    expect(limiter.limit).toBe(4);
  });

  it('shrinks multiplicatively on a 429, once per round of requests sent at the old limit', async () => {
    const limiter = new AdaptiveLimiter({ max: 40, initial: 20 });
    const slots: Slot[] = [];
    for (let i = 0; i < 20; i++) slots.push(await limiter.acquire());
    for (const s of slots) s.release({ throttled: true });
    expect(limiter.limit).toBe(14);
    expect(limiter.throttled).toBe(20);
    // After the decrease it grows by about one per round, not by doubling.
    await rounds(limiter, 3, 10);
    expect(limiter.limit).toBeLessThanOrEqual(17);
  });

  it('shrinks when latency rises well above the baseline (the server queues)', async () => {
    const limiter = new AdaptiveLimiter({ max: 64, initial: 32 });
    await rounds(limiter, 2, 10);
    const before = limiter.limit;
    await rounds(limiter, 3, 40);
    expect(limiter.limit).toBeLessThan(before);
  });

  it('settles where the requests in flight are served, not queued, on a server that answers 1000/s', async () => {
    // A server (or a client) that serves 1000 requests a second, 10 ms each at best: with L in
    // flight an answer takes max(10, L) ms. More than 10 in flight only queue.
    const limiter = new AdaptiveLimiter({ max: 64, initial: 8 });
    const settled: number[] = [];
    for (let r = 0; r < 800; r++) {
      const inFlight = limiter.limit;
      await rounds(limiter, 1, Math.max(10, inFlight));
      if (r >= 500) settled.push(limiter.target);
    }
    // Throughput min(1000, L/10ms) over C/L: at most 16 in flight (6 of them queued) keeps it at
    // 62% or more (the maximum of 64 would give 16%), and at least 10 keeps all the server can do.
    // Probes of the baseline (half the limit for two rounds every 1000 answers) keep our own
    // queue out of it, so the limit does not creep up.
    expect(Math.max(...settled)).toBeLessThanOrEqual(16);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(10);
    expect(limiter.peakLimit).toBeLessThan(64);
  });

  it('lets a request asked for first (a list) go ahead of the queued ones', async () => {
    const limiter = new AdaptiveLimiter({ max: 1, initial: 1 });
    const held = await limiter.acquire();
    const order: string[] = [];
    const later = limiter.acquire().then((s) => { order.push('delete'); s.release(); });
    const list = limiter.acquire(undefined, { first: true }).then((s) => { order.push('list'); s.release(); });
    held.release();
    await Promise.all([later, list]);
    expect(order).toEqual(['list', 'delete']);
  });

  it('drops queued requests at once when their signal fires, without waiting for a slot', async () => {
    const limiter = new AdaptiveLimiter({ max: 1, initial: 1 });
    const held = await limiter.acquire();
    const stop = new AbortController();
    const queued = [limiter.acquire(stop.signal), limiter.acquire(stop.signal)].map((p) => p.catch((e: unknown) => e));
    const other = limiter.acquire();
    stop.abort();
    expect(await Promise.all(queued)).toEqual([new Abandoned(false), new Abandoned(false)]);
    await expect(limiter.acquire(AbortSignal.abort())).rejects.toBeInstanceOf(Abandoned);
    held.release();
    (await other).release();
    expect(limiter.inFlight).toBe(0);
  });
});

describe('RateCeiling', () => {
  it('lets a burst go at once, then spaces requests at the rate; a stopped waiter leaves at once', async () => {
    const clock = new FakeClock();
    const ceiling = new RateCeiling(10, 3, clock);
    const sent: number[] = [];
    const take = () => ceiling.take().then(() => sent.push(clock.now()));
    void take(); void take(); void take(); void take(); void take();
    await clock.advance(1_000);
    expect(sent).toEqual([0, 0, 0, 100, 200]);

    void take(); void take(); void take();
    const stop = new AbortController();
    const waiting = ceiling.take(stop.signal).catch((e: unknown) => e);
    await settle();
    stop.abort();
    expect(await waiting).toBeInstanceOf(Abandoned);
  });
});
