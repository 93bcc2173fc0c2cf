import { randomUUID } from 'node:crypto';
import type { V1Job } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { finishedAt, gitRepoOf, judgeJob, jobState, Retention, type JobPolicy } from '../../src/gitjobs/select.ts';
import { foreignJobObject, gitJobObject, jobStatus, type GitRepoRef, type JobState } from '../fixtures/fleet-objects.ts';
import { formatAge } from '../../src/audit.ts';

const NOW = new Date('2025-06-01T12:00:00Z');
const HOUR = 3_600_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms);
const repo = (name: string, namespace = 'fleet-local'): GitRepoRef => ({ namespace, name, uid: `uid-${namespace}-${name}` });

let rv = 100;
/** A Job as the API server returns it: with uid, resourceVersion and status. */
function job(gitRepo: GitRepoRef, state: JobState, finished: Date, extra: Partial<V1Job['metadata']> = {}): V1Job {
  const base = gitJobObject({ gitRepo });
  return { ...base, metadata: { ...base.metadata, uid: randomUUID(), resourceVersion: String(rv++), ...extra }, status: jobStatus(state, finished) };
}

const policy = (p: Partial<JobPolicy> = {}): JobPolicy => ({ minAgeMs: HOUR, deleteFailed: false, ...p });
const noRetention = new Retention(0, false);

/** The two passes of the phase over a fixed set of Jobs: observe all, then judge each. */
function plan(jobs: V1Job[], p: JobPolicy & { keepLast: number }): Map<V1Job, ReturnType<typeof judgeJob>> {
  const retention = new Retention(p.keepLast, p.deleteFailed);
  for (const j of jobs) retention.observe(j);
  return new Map(jobs.map((j) => [j, judgeJob(j, p, NOW, retention)]));
}
const deleted = (verdicts: Map<V1Job, ReturnType<typeof judgeJob>>) =>
  [...verdicts].filter(([, v]) => v.action === 'delete').map(([j]) => j.metadata?.name);

describe('which Jobs are GitRepo Jobs', () => {
  it('recognises the GitRepo owner of fleet.cattle.io/v1alpha1 only', () => {
    const r = repo('x');
    expect(gitRepoOf(job(r, 'succeeded', ago(2 * HOUR)))).toEqual(r);
    const otherVersion = job(r, 'succeeded', ago(2 * HOUR));
    otherVersion.metadata!.ownerReferences![0]!.apiVersion = 'fleet.cattle.io/v1beta1';
    expect(gitRepoOf(otherVersion)).toBeUndefined();
    const cron = foreignJobObject({ namespace: 'fleet-local', name: 'nightly', owner: { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'c1' } });
    expect(gitRepoOf(cron)).toBeUndefined();
    expect(gitRepoOf(foreignJobObject({ namespace: 'default', name: 'adhoc' }))).toBeUndefined();
  });

  it('never touches a Job owned by anything else, however old and finished', () => {
    const cron = { ...foreignJobObject({ namespace: 'fleet-local', name: 'n', owner: { apiVersion: 'batch/v1', kind: 'CronJob', name: 'n', uid: 'c' } }), status: jobStatus('succeeded', ago(100 * HOUR)) };
    cron.metadata!.uid = 'u';
    cron.metadata!.resourceVersion = '1';
    expect(judgeJob(cron, policy({ minAgeMs: 0, deleteFailed: true }), NOW, noRetention).action).toBe('ignore');
  });
});

describe('state and age', () => {
  it('reads Complete, Failed and neither as succeeded, failed and running', () => {
    const r = repo('x');
    expect(jobState(job(r, 'succeeded', ago(HOUR)))).toBe('succeeded');
    expect(jobState(job(r, 'failed', ago(HOUR)))).toBe('failed');
    expect(jobState(job(r, 'running', ago(HOUR)))).toBe('running');
    const notYet = job(r, 'succeeded', ago(HOUR));
    notYet.status!.conditions = notYet.status!.conditions!.map((c) => ({ ...c, status: 'False' }));
    expect(jobState(notYet)).toBe('running');
  });

  it('dates completion by the Complete condition, then completionTime; failure by the Failed condition', () => {
    const r = repo('x');
    expect(finishedAt(job(r, 'succeeded', ago(2 * HOUR)))).toEqual(ago(2 * HOUR));
    const noCondTime = job(r, 'succeeded', ago(3 * HOUR));
    noCondTime.status!.conditions = noCondTime.status!.conditions!.map(({ lastTransitionTime: _drop, ...c }) => c);
    expect(finishedAt(noCondTime)).toEqual(ago(3 * HOUR));
    expect(finishedAt(job(r, 'failed', ago(4 * HOUR)))).toEqual(ago(4 * HOUR));
    expect(finishedAt(job(r, 'running', ago(4 * HOUR)))).toBeUndefined();
  });

  it('formats durations with two units at most', () => {
    expect(formatAge(3 * HOUR + 12 * 60_000 + 5000)).toBe('3h12m');
    expect(formatAge(45_000)).toBe('45s');
    expect(formatAge(2 * 24 * HOUR + 4 * HOUR)).toBe('2d4h');
    expect(formatAge(HOUR)).toBe('1h');
    expect(formatAge(0)).toBe('0s');
    expect(formatAge(-5)).toBe('0s');
    expect(formatAge(3 * 24 * HOUR + 59_000)).toBe('3d');
    expect(formatAge(undefined)).toBe('unknown');
  });
});

describe('judging one Job', () => {
  const r = repo('x');

  it('deletes a succeeded Job older than the minimum age, saying how old and why', () => {
    const verdict = judgeJob(job(r, 'succeeded', ago(3 * HOUR + 12 * 60_000)), policy(), NOW, noRetention);
    expect(verdict).toMatchObject({ action: 'delete', reason: 'succeeded 3h12m ago (min age 1h)', gitRepo: r });
  });

  it('carries the uid and resourceVersion of the Job as judged', () => {
    const j = job(r, 'succeeded', ago(2 * HOUR));
    expect(judgeJob(j, policy(), NOW, noRetention)).toMatchObject({ uid: j.metadata!.uid, resourceVersion: j.metadata!.resourceVersion });
  });

  it('keeps a succeeded Job younger than the minimum age', () => {
    expect(judgeJob(job(r, 'succeeded', ago(10 * 60_000)), policy(), NOW, noRetention)).toMatchObject({ action: 'keep', reason: 'succeeded 10m ago (min age 1h)' });
  });

  it('keeps running Jobs, whatever the policy', () => {
    expect(judgeJob(job(r, 'running', ago(99 * HOUR)), policy({ minAgeMs: 0, deleteFailed: true }), NOW, noRetention)).toMatchObject({ action: 'keep', reason: 'running' });
  });

  it('keeps failed Jobs unless deleteFailed', () => {
    const failed = job(r, 'failed', ago(5 * HOUR));
    expect(judgeJob(failed, policy(), NOW, noRetention)).toMatchObject({ action: 'keep', reason: 'failed: kept so its error stays visible' });
    expect(judgeJob(failed, policy({ deleteFailed: true }), NOW, noRetention)).toMatchObject({ action: 'delete', reason: 'failed 5h ago (min age 1h)' });
  });

  it('leaves alone a Job that is already being deleted', () => {
    const going = job(r, 'succeeded', ago(5 * HOUR), { deletionTimestamp: ago(1000) });
    expect(judgeJob(going, policy(), NOW, noRetention)).toMatchObject({ action: 'keep', reason: 'already being deleted' });
  });

  it('keeps a finished Job of unknown age unless the minimum age is 0', () => {
    const unknown = job(r, 'succeeded', ago(5 * HOUR));
    delete unknown.status!.completionTime;
    unknown.status!.conditions = unknown.status!.conditions!.map(({ lastTransitionTime: _drop, ...c }) => c);
    expect(judgeJob(unknown, policy(), NOW, noRetention)).toMatchObject({ action: 'keep', reason: 'succeeded at an unknown time (min age 1h)' });
    expect(judgeJob(unknown, policy({ minAgeMs: 0 }), NOW, noRetention)).toMatchObject({ action: 'delete', reason: 'succeeded at an unknown time (min age 0s)' });
  });

  it('keeps a Job that has no uid or resourceVersion to make the delete conditional', () => {
    const j = job(r, 'succeeded', ago(5 * HOUR));
    delete j.metadata!.resourceVersion;
    expect(judgeJob(j, policy(), NOW, noRetention).action).toBe('keep');
  });
});

describe('keep-last and newest failed, per GitRepo', () => {
  it('keeps the keepLast newest succeeded Jobs of each GitRepo and deletes the rest', () => {
    const a = repo('a');
    const b = repo('b', 'fleet-default');
    const jobsA = [5, 2, 4, 3, 6].map((h) => job(a, 'succeeded', ago(h * HOUR), { name: `a-${h}h` }));
    const jobsB = [7, 8].map((h) => job(b, 'succeeded', ago(h * HOUR), { name: `b-${h}h` }));
    const verdicts = plan([...jobsA, ...jobsB], { ...policy(), keepLast: 2 });
    expect(deleted(verdicts).sort()).toEqual(['a-4h', 'a-5h', 'a-6h']);
    expect(verdicts.get(jobsA[1]!)).toMatchObject({ action: 'keep', reason: 'among the 2 newest succeeded of GitRepo fleet-local/a' });
    expect(verdicts.get(jobsB[1]!)).toMatchObject({ action: 'keep', reason: 'among the 2 newest succeeded of GitRepo fleet-default/b' });
  });

  it('tells GitRepos of the same name apart by uid', () => {
    const first = repo('same');
    const second = { ...first, uid: 'another-uid' };
    const jobs = [job(first, 'succeeded', ago(2 * HOUR), { name: 'first' }), job(second, 'succeeded', ago(3 * HOUR), { name: 'second' })];
    expect(deleted(plan(jobs, { ...policy(), keepLast: 1 }))).toEqual([]);
  });

  it('with deleteFailed, keeps the newest failed Job of each GitRepo even when succeeded ones are newer', () => {
    const a = repo('a');
    const jobs = [
      job(a, 'failed', ago(10 * HOUR), { name: 'failed-10h' }),
      job(a, 'failed', ago(8 * HOUR), { name: 'failed-8h' }),
      job(a, 'succeeded', ago(2 * HOUR), { name: 'ok-2h' }),
      job(a, 'failed', ago(9 * HOUR), { name: 'failed-9h' }),
    ];
    const verdicts = plan(jobs, { ...policy({ deleteFailed: true }), keepLast: 0 });
    expect(deleted(verdicts).sort()).toEqual(['failed-10h', 'failed-9h', 'ok-2h']);
    expect(verdicts.get(jobs[1]!)).toMatchObject({ action: 'keep', reason: 'newest failed of GitRepo fleet-local/a' });
  });

  it('keeps a Job the first pass never saw instead of deleting one it chose to keep', () => {
    const a = repo('a');
    const seen = [1, 2, 3].map((h) => job(a, 'succeeded', ago(h * HOUR + HOUR), { name: `seen-${h}` }));
    const retention = new Retention(2, false);
    for (const j of seen) retention.observe(j);
    const newcomer = job(a, 'succeeded', ago(90 * 60_000), { name: 'newcomer' });
    expect(judgeJob(newcomer, policy(), NOW, retention).action).toBe('keep');
    expect(judgeJob(seen[0]!, policy(), NOW, retention).action).toBe('keep');
    expect(judgeJob(seen[2]!, policy(), NOW, retention).action).toBe('delete');
    const newFailure = job(repo('b'), 'failed', ago(50 * HOUR), { name: 'unseen-failed' });
    expect(judgeJob(newFailure, policy({ deleteFailed: true }), NOW, new Retention(0, true)).action).toBe('keep');
  });

  it('ranks Jobs finished at the same instant by name, so exactly keepLast are kept', () => {
    const a = repo('a');
    const jobs = ['a-00001', 'a-00003', 'a-00002'].map((name) => job(a, 'succeeded', ago(5 * HOUR), { name }));
    expect(deleted(plan(jobs, { ...policy(), keepLast: 2 }))).toEqual(['a-00001']);
  });

  it('ignores Jobs already being deleted when choosing the newest', () => {
    const a = repo('a');
    const jobs = [job(a, 'succeeded', ago(2 * HOUR), { name: 'going', deletionTimestamp: ago(1) }), job(a, 'succeeded', ago(3 * HOUR), { name: 'older' })];
    expect(deleted(plan(jobs, { ...policy(), keepLast: 1 }))).toEqual([]);
  });

  it('needs a first pass only for a keep rule', () => {
    expect(new Retention(0, false).needsFirstPass).toBe(false);
    expect(new Retention(1, false).needsFirstPass).toBe(true);
    expect(new Retention(0, true).needsFirstPass).toBe(true);
  });
});
