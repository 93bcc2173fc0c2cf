// A run paused past its lock timeout (SIGSTOP, a long GC pause) whose lock another run then took
// over must not send a single delete when it resumes: its heartbeat timer has not had the chance
// to notice, so each delete checks the lock's local deadline on a monotonic clock first. The
// pause is an injected clock jump, not a real stop.
import { afterEach, expect, it } from 'vitest';
import { cleanupGitJobs } from '../../src/gitjobs/cleanup.ts';
import { acquireMarker, type AcquireOptions } from '../../src/marker/lock.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { runContext, testKube } from '../fixtures/kube.ts';

let server: TestApiServer;
afterEach(() => server?.close());

const HOUR = 3_600_000;

it('a holder paused past its lock timeout, then taken over, sends no delete when it resumes', async () => {
  server = await startApiServer();
  const kube = testKube(server.kubeconfig());
  await installFleetCrds(kube.kubeConfig);
  const seeder = new FleetSeeder(kube.kubeConfig);
  for (const ns of ['m', 'fleet-local']) await seeder.namespace(ns);
  const repo = await seeder.gitRepo('fleet-local', 'app');
  for (let i = 0; i < 5; i++) await seeder.gitJob(repo, { state: 'succeeded', finishedAt: new Date(Date.now() - 3 * HOUR) });

  const lockTimeoutMs = 60_000;
  let mono = 1_000;
  let wall = Date.now();
  const base = (holder: string, clock: () => Date): AcquireOptions => ({
    namespace: 'm', name: 'fleet-cleanup', runKey: 'v1', holder, force: false, lockTimeoutMs, dryRun: false, now: clock, logger: kube.logger,
  });
  const a = await acquireMarker(kube.access, { ...base('A/aaaa/1', () => new Date(wall)), monotonic: () => mono });
  expect(a.kind).toBe('held');
  if (a.kind !== 'held') return;
  const ctx = runContext(kube, { fence: () => a.lock.fenceCause() });

  // A is paused for longer than its lock timeout; B finds the lock stale and takes it over.
  mono += lockTimeoutMs + 1;
  wall += lockTimeoutMs + 1;
  const b = await acquireMarker(kube.access, base('B/bbbb/1', () => new Date(wall)));
  expect(b.kind).toBe('held');

  // A resumes in the middle of its GitRepo Job phase.
  const result = await cleanupGitJobs(ctx, { namespaces: 'all', minAgeMs: HOUR, keepLast: 0, deleteFailed: false, pageSize: 50 });

  expect(server.requests.count({ verb: 'delete' })).toBe(0);
  expect(result.outcome).toBe('partial');
  expect(result.cause).toMatch(/^the lock on configmap m\/fleet-cleanup was last renewed \d+s ago, past its deadline/);
  expect(a.lock.lost.aborted).toBe(true);
  await a.lock.stop();
  if (b.kind === 'held') await b.lock.stop();
});

it('the deadline is the last successful renewal plus the lock timeout less the margin, on the monotonic clock', async () => {
  server = await startApiServer();
  const kube = testKube(server.kubeconfig());
  await kube.access.core.createNamespace({ body: { metadata: { name: 'm' } } });
  let mono = 5_000;
  const a = await acquireMarker(kube.access, {
    namespace: 'm', name: 'fleet-cleanup', runKey: 'v1', holder: 'A/aaaa/1', force: false, lockTimeoutMs: 60_000, fenceMarginMs: 10_000,
    dryRun: false, now: () => new Date(), monotonic: () => mono, logger: kube.logger,
  });
  if (a.kind !== 'held') throw new Error('not held');
  expect(a.lock.deadline).toBe(5_000 + 50_000);
  mono = 5_000 + 49_999;
  expect(a.lock.fenceCause()).toBeUndefined();
  // A renewal sent at 54 999 moves the deadline.
  await a.lock.renew();
  expect(a.lock.deadline).toBe(54_999 + 50_000);
  mono = 54_999 + 50_000;
  expect(a.lock.fenceCause()).toMatch(/past its deadline/);
  await a.lock.stop();
});
