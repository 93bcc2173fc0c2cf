// The marker's writes as kube-apiserver validates them. The lock once spread its whole options
// (dryRun: false included) into replaceNamespacedConfigMap, so every update went out as
// `PUT .../configmaps/fleet-cleanup?dryRun=false`, which kube refuses (422, dryRun accepts only
// All): a takeover, every heartbeat and the final write failed on a real cluster.
import { afterEach, expect, it } from 'vitest';
import { acquireMarker } from '../../src/marker/lock.ts';
import { dataFromRecord } from '../../src/marker/record.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { testKube } from '../fixtures/kube.ts';

let server: TestApiServer;
afterEach(() => server?.close());

it('takes over a failed marker, renews it and writes completed, each update a request kube-apiserver accepts', async () => {
  server = await startApiServer();
  const kube = testKube(server.kubeconfig());
  await kube.access.core.createNamespace({ body: { metadata: { name: 'm' } } });
  await kube.access.core.createNamespacedConfigMap({
    namespace: 'm',
    body: { metadata: { name: 'fleet-cleanup', labels: { 'app.kubernetes.io/name': 'fleet-cleanup' } }, data: dataFromRecord({ status: 'failed', runKey: 'v1', startedAt: '2025-12-31T00:00:00Z', holder: 'old/x/1', cause: 'earlier run' }) },
  });
  let now = Date.parse('2026-01-01T00:00:00Z');
  const acquired = await acquireMarker(kube.access, {
    namespace: 'm', name: 'fleet-cleanup', runKey: 'v1', holder: 'pod/abcd/1', force: false, lockTimeoutMs: 60_000, dryRun: false,
    now: () => new Date(now), logger: kube.logger,
  });
  expect(acquired.kind).toBe('held');
  if (acquired.kind !== 'held') return;
  now += 20_000;
  await acquired.lock.renew();
  expect(acquired.lock.lost.aborted).toBe(false);
  now += 5_000;
  await acquired.lock.finish('completed', new Date(now), undefined, '{}');

  const marker = await kube.access.core.readNamespacedConfigMap({ namespace: 'm', name: 'fleet-cleanup' });
  expect(marker.data).toMatchObject({ status: 'completed', holder: 'pod/abcd/1', finishedAt: '2026-01-01T00:00:25.000Z', renewedAt: '2026-01-01T00:00:25.000Z' });
  const updates = server.requests.list({ verb: 'update', resource: 'configmaps', name: 'fleet-cleanup' });
  // takeover, heartbeat, final write
  expect(updates.map((r) => [r.status, r.query.toString()])).toEqual([
    [200, ''],
    [200, ''],
    [200, ''],
  ]);
  expect(server.contract.violations()).toEqual([]);
});
