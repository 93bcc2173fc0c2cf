// Connection reuse against the API test server over TLS: a run's requests share a few
// keep-alive connections instead of opening one (TCP + TLS handshake) per request, deletes
// with a body (their preconditions) included.
import { afterEach, expect, it } from 'vitest';
import { cleanupGitJobs } from '../../src/gitjobs/cleanup.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { runContext, testKube } from '../fixtures/kube.ts';

let server: TestApiServer;
afterEach(async () => {
  await server?.close();
});

it('deletes 120 Jobs over at most the concurrency plus a few connections', async () => {
  server = await startApiServer();
  const seeding = testKube(server.kubeconfig());
  await installFleetCrds(seeding.kubeConfig);
  const seeder = new FleetSeeder(seeding.kubeConfig);
  await seeder.namespace('fleet-local');
  const repo = await seeder.gitRepo('fleet-local', 'app');
  for (let i = 0; i < 120; i++) await seeder.gitJob(repo, { state: 'succeeded', finishedAt: new Date(Date.now() - 7_200_000 - i * 1000) });

  const kube = testKube(server.kubeconfig(), { concurrency: 4 });
  const before = server.connections();
  const result = await cleanupGitJobs(runContext(kube), { namespaces: 'all', minAgeMs: 3_600_000, keepLast: 0, deleteFailed: false, pageSize: 50 });
  const opened = server.connections() - before;
  await kube.access.close();

  expect(result.tallies.jobs?.deleted).toBe(120);
  expect(server.requests.count({ verb: 'delete', resource: 'jobs' })).toBe(120);
  // Before the pool, every one of the 123 requests opened its own connection.
  expect(opened).toBeGreaterThan(0);
  expect(opened).toBeLessThanOrEqual(4 + 2);
});
