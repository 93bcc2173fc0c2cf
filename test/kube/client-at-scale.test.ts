// The API client over many deletes against the API test server (TLS): connections are reused,
// deletes with a body (their preconditions) included; and against a server that pushes back
// like kube-apiserver's API Priority and Fairness (seats per user, a bounded queue, then 429
// with Retry-After), the adaptive limit backs off, the run finishes, the limit settles near
// what the server admits.
import pLimit from 'p-limit';
import { afterEach, expect, it } from 'vitest';
import { cleanupGitJobs } from '../../src/gitjobs/cleanup.ts';
import { startApiServer, type StartOptions, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { runContext, testKube } from '../fixtures/kube.ts';
import type { KubeAccessOptions } from '../../src/kube/access.ts';

let server: TestApiServer;
afterEach(async () => {
  await server?.close();
});

/** A server with `count` old succeeded GitRepo Jobs. */
async function serverWithOldJobs(count: number, options: StartOptions = {}): Promise<void> {
  server = await startApiServer(options);
  const seeding = testKube(server.kubeconfig());
  await installFleetCrds(seeding.kubeConfig);
  const seeder = new FleetSeeder(seeding.kubeConfig);
  await seeder.namespace('fleet-local');
  const repo = await seeder.gitRepo('fleet-local', 'app');
  const four = pLimit(4);
  await Promise.all(Array.from({ length: count }, (_, i) => four(() => seeder.gitJob(repo, { state: 'succeeded', finishedAt: new Date(Date.now() - 7_200_000 - i * 1000) }))));
}

async function cleanup(access: Partial<KubeAccessOptions>) {
  const kube = testKube(server.kubeconfig(), access);
  const result = await cleanupGitJobs(runContext(kube), { namespaces: 'all', minAgeMs: 3_600_000, keepLast: 0, deleteFailed: false, pageSize: 50 });
  await kube.access.close();
  return { result, limiter: kube.access.limiter };
}

it('deletes 60 Jobs over at most the concurrency plus a few connections', async () => {
  await serverWithOldJobs(60);
  const before = server.connections();
  const { result } = await cleanup({ concurrency: 4 });
  const opened = server.connections() - before;
  expect(result.tallies.jobs?.deleted).toBe(60);
  expect(server.requests.count({ verb: 'delete', resource: 'jobs' })).toBe(60);
  // Before the pool, every one of the 63 requests opened its own connection.
  expect(opened).toBeGreaterThan(0);
  expect(opened).toBeLessThanOrEqual(4 + 2);
});

it('backs off on 429s from a server at capacity and deletes everything', async () => {
  await serverWithOldJobs(100, { flowControl: { seatsPerUser: 4, queueLength: 2 } });
  server.faults.add({ verb: 'delete', resource: 'jobs', latencyMs: 10 });
  // Starts far above what the server admits (4 executing + 2 queued).
  const { result, limiter } = await cleanup({ concurrency: 32, initialConcurrency: 24, retries: 8 });
  expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 100, errors: 0 } } });
  const refused = server.requests.count({ verb: 'delete', resource: 'jobs' }) - 100;
  // It met the server's refusals, and backed off instead of storming it: far fewer 429s than
  // deletes, and a limit well below where it started.
  expect(refused).toBeGreaterThan(0);
  expect(limiter.throttled).toBeGreaterThan(0);
  expect(refused).toBeLessThan(50);
  expect(limiter.limit).toBeLessThan(16);
});
