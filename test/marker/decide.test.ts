import { describe, expect, it } from 'vitest';
import { decide, type DecideInput } from '../../src/marker/decide.ts';
import { defaultHolder } from '../../src/marker/lock.ts';
import type { MarkerRecord } from '../../src/marker/record.ts';
import { buildSummary, overallCause, overallStatus } from '../../src/marker/summary.ts';

const now = new Date('2026-03-01T12:00:00Z');
const input: DecideInput = { runKey: 'v2', force: false, lockTimeoutMs: 120_000, now };
const marker = (fields: Partial<MarkerRecord>): MarkerRecord => ({ status: 'completed', runKey: 'v2', startedAt: '2026-03-01T10:00:00Z', holder: 'pod-a/1', finishedAt: '2026-03-01T10:05:00Z', ...fields });

describe('decide', () => {
  it('takes an absent marker', () => {
    expect(decide(undefined, input)).toEqual({ action: 'take', why: 'no marker yet' });
  });

  it('skips when completed for the same key, and says when', () => {
    expect(decide(marker({}), input)).toEqual({ action: 'skip-completed', runKey: 'v2', finishedAt: '2026-03-01T10:05:00Z' });
  });

  it('runs when completed for the same key with --force, for another key, or with no key', () => {
    expect(decide(marker({}), { ...input, force: true }).action).toBe('take');
    expect(decide(marker({ runKey: 'v1' }), input)).toEqual({ action: 'take', why: 'previous run key was v1' });
    expect(decide(marker({}), { ...input, runKey: undefined })).toEqual({ action: 'take', why: 'no run key given' });
  });

  it('runs again after a partial or failed run with the same key', () => {
    expect(decide(marker({ status: 'failed', cause: 'gitjobs failed: 403' }), input)).toEqual({ action: 'take', why: 'previous run ended failed: gitjobs failed: 403' });
    expect(decide(marker({ status: 'partial' }), input).action).toBe('take');
    expect(decide(marker({ status: undefined }), input)).toEqual({ action: 'take', why: 'marker holds no known status' });
  });

  it('leaves a live lock alone, even with --force', () => {
    const live = marker({ status: 'running', renewedAt: '2026-03-01T11:59:00Z', holder: 'pod-b/7' });
    const expected = { action: 'skip-locked', holder: 'pod-b/7', startedAt: '2026-03-01T10:00:00Z', renewedAt: '2026-03-01T11:59:00Z' };
    expect(decide(live, input)).toEqual(expected);
    expect(decide(live, { ...input, force: true })).toEqual(expected);
  });

  it('takes over a lock not renewed for the lock timeout', () => {
    const stale = marker({ status: 'running', renewedAt: '2026-03-01T11:58:00Z', holder: 'pod-b/7' });
    expect(decide(stale, input)).toEqual({ action: 'take', why: 'previous run by pod-b/7 stopped renewing its lock at 2026-03-01T11:58:00Z' });
    expect(decide(stale, { ...input, lockTimeoutMs: 121_000 }).action).toBe('skip-locked');
  });
});

describe('decide, with the lock timeout the holder recorded', () => {
  // The holder runs with 2m and renewed 20 s ago; the taker runs with 10 s.
  const held = (lockTimeoutSeconds?: string) =>
    marker({ status: 'running', renewedAt: '2026-03-01T11:59:40Z', holder: 'hook/1', ...(lockTimeoutSeconds !== undefined ? { lockTimeoutSeconds } : {}) });
  const taker = { ...input, lockTimeoutMs: 10_000 };

  it("keeps the holder's longer lock: a shorter --lock-timeout of the taker does not cut it short", () => {
    expect(decide(held('120'), taker)).toEqual({ action: 'skip-locked', holder: 'hook/1', startedAt: '2026-03-01T10:00:00Z', renewedAt: '2026-03-01T11:59:40Z' });
  });

  it("ends the lock after the holder's timeout, or the taker's when that is longer", () => {
    expect(decide(held('15'), taker).action).toBe('take');
    expect(decide(held('20'), taker).action).toBe('take'); // exactly 20 s old: stale
    expect(decide(held('20.001'), taker).action).toBe('skip-locked'); // milliseconds count
    expect(decide(held('5'), { ...taker, lockTimeoutMs: 30_000 }).action).toBe('skip-locked');
  });

  it("uses the taker's own timeout when the marker records none or nonsense", () => {
    for (const recorded of [undefined, '', 'two minutes', '-120', '0']) expect(decide(held(recorded), taker).action).toBe('take');
    expect(decide(held(), { ...taker, lockTimeoutMs: 21_000 }).action).toBe('skip-locked');
  });
});

describe('defaultHolder', () => {
  it('names the Pod and the pid, and tells two runs in one Pod apart', () => {
    const a = defaultHolder('hook-x7k2p', 1);
    expect(a).toMatch(/^hook-x7k2p\/[0-9a-f]{8}\/1$/);
    expect(defaultHolder('hook-x7k2p', 1)).not.toBe(a);
  });
});

describe('summary', () => {
  const tally = (deleted: number, kept: number) => ({ deleted, kept, skipped: 1, errors: 0 });

  it('adds tallies per kind and records each phase outcome', () => {
    const summary = buildSummary(
      [
        { phase: 'gitjobs', outcome: 'completed', tallies: { jobs: tally(3, 4) } },
        { phase: 'oci', outcome: 'partial', cause: 'registry down', tallies: { ociArtifacts: tally(1, 2), ociSecrets: tally(5, 0) } },
      ],
      1234.6,
      17,
    );
    expect(summary).toEqual({
      jobs: tally(3, 4), ociArtifacts: tally(1, 2), ociSecrets: tally(5, 0),
      phases: { gitjobs: 'completed', oci: 'partial' }, durationMs: 1235, apiRequests: 17,
    });
  });

  it('derives the marker status: failed beats partial beats completed; skipped counts as done', () => {
    const r = (outcome: 'completed' | 'partial' | 'failed' | 'skipped', cause?: string) => ({ phase: `p-${outcome}`, outcome, tallies: {}, ...(cause ? { cause } : {}) });
    expect(overallStatus([r('completed'), r('skipped')])).toBe('completed');
    expect(overallStatus([r('partial'), r('completed')])).toBe('partial');
    expect(overallStatus([r('partial'), r('failed')])).toBe('failed');
    expect(overallCause([r('completed'), r('skipped')])).toBeUndefined();
    expect(overallCause([r('partial', 'time budget 1s spent'), r('failed', 'list jobs.batch: 403 Forbidden')])).toBe(
      'p-partial partial: time budget 1s spent; p-failed failed: list jobs.batch: 403 Forbidden',
    );
  });
});
