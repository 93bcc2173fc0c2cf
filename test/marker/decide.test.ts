import { describe, expect, it } from 'vitest';
import { decide, type DecideInput } from '../../src/marker/decide.ts';
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
