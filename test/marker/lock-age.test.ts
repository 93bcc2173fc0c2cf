// A lock taken slowly (the create was applied but its answer was lost, and the retries timed
// out too) is already old when the run gets it. The run must judge its age at once, not a
// third of a timeout later, or another run could take over while this one still cleans.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { acquireMarker } from '../../src/marker/lock.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { testKube } from '../fixtures/kube.ts';

let server: TestApiServer;
afterEach(() => server?.close());

it('a lock that expired while it was being taken is given up as soon as renewing starts', async () => {
  server = await startApiServer();
  const admin = testKube(server.kubeconfig());
  await admin.access.core.createNamespace({ body: { metadata: { name: 'm' } } });
  // The first create is applied only after the client gave up on it; so are the retries'.
  let held = 0;
  server.faults.add({ verb: 'create', resource: 'configmaps', namespace: 'm', times: 3, before: async () => { await sleep(++held === 1 ? 1300 : 1100); } });
  const lockTimeoutMs = 3000;
  const options = (holder: string) => ({ namespace: 'm', name: 'fleet-cleanup', runKey: 'v1', holder, force: false, lockTimeoutMs, dryRun: false, now: () => new Date(), logger: admin.logger });

  const started = Date.now();
  const a = await acquireMarker(testKube(server.kubeconfig(), { requestTimeoutMs: 1000, retries: 5 }).access, options('A/aaaa/1'));
  expect(a.kind).toBe('held');
  if (a.kind !== 'held') return;
  // Precondition of the scenario: taking the lock took longer than two thirds of its timeout.
  expect(Date.now() - started).toBeGreaterThanOrEqual((lockTimeoutMs * 2) / 3);
  a.lock.startRenewing();
  expect(a.lock.lost.aborted).toBe(true);
  expect(String((a.lock.lost.reason as Error).message)).toMatch(/^could not renew the lock on configmap m\/fleet-cleanup for \d+s; stopping before another run takes it over/);
  await a.lock.stop();
});
