// The run-once marker contract (README "The run-once marker"), checked against the API test
// server through the real command: what the ConfigMap says, what the run does, what it skips.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { acquireMarker } from '../../src/marker/lock.ts';
import { readMarker, runInProcess, seedGitRepoJobs, untilMarkerStatus, useTestCluster, type CliRun } from '../cli/harness.ts';
import { testKube } from '../fixtures/kube.ts';

const cluster = useTestCluster();

// Each test has its own marker namespace and Job namespace, so tests cannot see each other's objects.
let counter = 0;
async function scenario(jobs: { succeeded?: number; failed?: number; running?: number } = { succeeded: 3 }) {
  counter++;
  const markerNs = `marker-${counter}`;
  const jobNs = `jobs-${counter}`;
  await cluster.seeder.namespace(markerNs);
  await seedGitRepoJobs(cluster.seeder, jobNs, jobs);
  const args = (runKey: string, ...extra: string[]) => [
    '--kubeconfig', cluster.kubeconfigPath, '--namespace', markerNs, '--job-namespaces', jobNs, '--run-key', runKey,
    '--skip-oci', '--qps', '1000', '--burst', '1000', ...extra,
  ];
  /** The marker, undefined when there is none (404); any other error fails the test. */
  const marker = (): Promise<V1ConfigMap | undefined> => readMarker(cluster.core, markerNs);
  const jobNames = async () => ((await cluster.batch.listNamespacedJob({ namespace: jobNs })).items).map((j) => j.metadata?.name ?? '');
  const writeMarker = (data: Record<string, string>) =>
    cluster.core.createNamespacedConfigMap({
      namespace: markerNs,
      body: { metadata: { name: 'fleet-cleanup', namespace: markerNs, labels: { 'app.kubernetes.io/name': 'fleet-cleanup' } }, data },
    });
  const jobDeletes = () => cluster.server.requests.count({ verb: 'delete', resource: 'jobs', namespace: jobNs });
  const jobLists = () => cluster.server.requests.count({ verb: 'list', resource: 'jobs' });
  return { markerNs, jobNs, args, marker, jobNames, writeMarker, jobDeletes, jobLists };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
/** The marker of a failed run an hour ago, with the same run key as the tests' runs. */
const failedMarker = () => ({ status: 'failed', runKey: 'v1', holder: 'old/1', startedAt: minutesAgo(60), finishedAt: minutesAgo(59), cause: 'x' });

describe('the run-once marker', () => {
  it('is created by the first run: completed, with the run key and a summary', async () => {
    const s = await scenario({ succeeded: 3, failed: 1, running: 1 });
    const run = await runInProcess(s.args('v1', '--holder', 'pod-x/1', '--keep-last', '1'));
    expect(run.code).toBe(0);
    expect(await s.jobNames()).toHaveLength(3); // the newest succeeded, the failed and the running one

    const cm = await s.marker();
    expect(cm?.metadata?.labels).toEqual({ 'app.kubernetes.io/name': 'fleet-cleanup' });
    const data = cm?.data ?? {};
    expect(Object.keys(data).sort()).toEqual(['finishedAt', 'holder', 'lockTimeoutSeconds', 'renewedAt', 'runKey', 'startedAt', 'status', 'summary']);
    expect(data).toMatchObject({ status: 'completed', runKey: 'v1', holder: 'pod-x/1', lockTimeoutSeconds: '120' });
    for (const key of ['startedAt', 'finishedAt', 'renewedAt'] as const) expect(data[key]).toMatch(RFC3339);
    expect(Date.parse(data.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(data.startedAt!));
    const summary = JSON.parse(data.summary!);
    expect(summary).toMatchObject({ jobs: { deleted: 2, kept: 1, skipped: 0, errors: 0 }, phases: { gitjobs: 'completed', oci: 'skipped' } });
    expect(summary.apiRequests).toBeGreaterThanOrEqual(2 + 1 + 3); // 2 deletes, a list, the marker's read, take and finish
    expect(Number.isInteger(summary.durationMs)).toBe(true); // recorded, in whole milliseconds
    expect(run.stderr).toMatch(/^fleet-cleanup: completed: jobs deleted 2 kept 1 skipped 0 errors 0; oci skipped \(--skip-oci\); \d+ API requests in \d+\.\ds$/m);
  });

  it('skips a run with the same key: exit 0, no Job listed, marker untouched', async () => {
    const s = await scenario();
    expect((await runInProcess(s.args('v1'))).code).toBe(0);
    const before = await s.marker();
    await seedGitRepoJobs(cluster.seeder, s.jobNs, { succeeded: 1 }, 'later');
    cluster.server.requests.reset();

    const again = await runInProcess(s.args('v1'));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`fleet-cleanup: already completed for run key v1 at ${before?.data?.finishedAt}; nothing to do`);
    expect(s.jobLists()).toBe(0);
    expect(cluster.server.requests.count({ verb: 'update', resource: 'configmaps' }) + cluster.server.requests.count({ verb: 'create', resource: 'configmaps' })).toBe(0);
    expect((await s.marker())?.metadata?.resourceVersion).toBe(before?.metadata?.resourceVersion);
    expect(await s.jobNames()).toHaveLength(1);
  });

  it('runs again with --force, and with a new key', async () => {
    const s = await scenario({ succeeded: 1 });
    expect((await runInProcess(s.args('v1'))).code).toBe(0);
    await seedGitRepoJobs(cluster.seeder, s.jobNs, { succeeded: 2 }, 'second');

    const forced = await runInProcess(s.args('v1', '--force'));
    expect(forced.code).toBe(0);
    expect(forced.audits('delete')).toHaveLength(2);
    expect((await s.marker())?.data).toMatchObject({ status: 'completed', runKey: 'v1' });

    await seedGitRepoJobs(cluster.seeder, s.jobNs, { succeeded: 1 }, 'third');
    const next = await runInProcess(s.args('v2'));
    expect(next.code).toBe(0);
    expect(next.audits('delete')).toHaveLength(1);
    expect((await s.marker())?.data).toMatchObject({ status: 'completed', runKey: 'v2' });
    expect(await s.jobNames()).toEqual([]);
  });

  it.each([
    ['no marker yet (both create it)', undefined],
    ['a failed marker (both update it)', failedMarker()],
  ])('lets exactly one of two concurrent runs clean: %s', async (_title, existing) => {
    const s = await scenario({ succeeded: 4 });
    if (existing) await s.writeMarker(existing);
    // A slow Job list keeps the winner holding the lock while the loser reads the marker.
    cluster.server.faults.add({ verb: 'list', resource: 'jobs', latencyMs: 1000 });

    const [a, b] = await Promise.all([runInProcess(s.args('v1', '--holder', 'run-a')), runInProcess(s.args('v1', '--holder', 'run-b'))]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const [winner, loser] = a.audits('delete').length > 0 ? [a, b] : [b, a];
    const winnerName = winner === a ? 'run-a' : 'run-b';
    expect(winner.audits('delete')).toHaveLength(4);
    expect(loser.audits('delete')).toHaveLength(0);
    expect(loser.stderr).toMatch(new RegExp(`fleet-cleanup: another run is in progress: ${winnerName} holds the lock since \\S+ `));
    expect(s.jobDeletes()).toBe(4);
    expect((await s.marker())?.data).toMatchObject({ status: 'completed', holder: winnerName });
  });

  it('leaves a live lock of another run alone: exit 0, nothing listed', async () => {
    const s = await scenario();
    const since = minutesAgo(5);
    await s.writeMarker({ status: 'running', runKey: 'v1', holder: 'busy-pod/1', startedAt: since, renewedAt: minutesAgo(0.2) });
    const run = await runInProcess(s.args('v1', '--force'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`fleet-cleanup: another run is in progress: busy-pod/1 holds the lock since ${since}`);
    expect(s.jobLists()).toBe(0);
    expect((await s.marker())?.data).toMatchObject({ status: 'running', holder: 'busy-pod/1' });
  });

  it("keeps a holder's lock for the lock timeout it recorded, however short the taker's", async () => {
    const s = await scenario();
    const since = minutesAgo(3);
    const renewedAt = minutesAgo(20 / 60);
    await s.writeMarker({ status: 'running', runKey: 'v1', holder: 'hook/1', startedAt: since, renewedAt, lockTimeoutSeconds: '120' });
    const run = await runInProcess(s.args('v1', '--lock-timeout', '10s'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`fleet-cleanup: another run is in progress: hook/1 holds the lock since ${since} (renewed ${renewedAt}`);
    expect(s.jobLists()).toBe(0);
    expect((await s.marker())?.data).toMatchObject({ status: 'running', holder: 'hook/1', renewedAt });
  });

  it('takes over a running marker not renewed for --lock-timeout (a dead run)', async () => {
    const s = await scenario({ succeeded: 2 });
    const renewedAt = minutesAgo(10);
    await s.writeMarker({ status: 'running', runKey: 'v1', holder: 'dead-pod/1', startedAt: minutesAgo(12), renewedAt });
    const run = await runInProcess(s.args('v1', '--holder', 'new-pod/1'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`previous run by dead-pod/1 stopped renewing its lock at ${renewedAt}`);
    expect(run.audits('delete')).toHaveLength(2);
    expect((await s.marker())?.data).toMatchObject({ status: 'completed', holder: 'new-pod/1', runKey: 'v1' });
  });

  it('records a failed run with its cause, and the next run with the same key does the work', async () => {
    const s = await scenario({ succeeded: 2 });
    const fault = cluster.server.faults.add({ verb: 'list', resource: 'jobs', namespace: s.jobNs, status: 403, reason: 'Forbidden', message: 'jobs.batch is forbidden: User "system:serviceaccount:x:y" cannot list resource "jobs"' });
    const failed = await runInProcess(s.args('v1'));
    expect(failed.code).toBe(1);
    const data = (await s.marker())?.data ?? {};
    expect(data.status).toBe('failed');
    expect(data.cause).toMatch(/^gitjobs failed: .*403/);
    expect(data.cause).not.toContain('\n');
    expect(Object.keys(data).sort()).toEqual(['cause', 'finishedAt', 'holder', 'lockTimeoutSeconds', 'renewedAt', 'runKey', 'startedAt', 'status', 'summary']);
    fault.remove();
    expect(await s.jobNames()).toHaveLength(2);

    const next = await runInProcess(s.args('v1'));
    expect(next.code).toBe(0);
    expect(next.stderr).toContain('(previous run ended failed: gitjobs failed:');
    expect(await s.jobNames()).toEqual([]);
    const after = (await s.marker())?.data ?? {};
    expect(after.status).toBe('completed');
    expect(after.cause).toBeUndefined();
  });

  it('is never written by a dry run', async () => {
    const s = await scenario({ succeeded: 2 });
    const run = await runInProcess(s.args('v1', '--dry-run'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('would take marker');
    expect(run.stderr).toMatch(/dry run \(marker not written\), would end completed: jobs would delete 2 /);
    expect(run.audits('would-delete')).toHaveLength(2);
    expect(await s.marker()).toBeUndefined();
    expect(cluster.server.requests.count({ resource: 'configmaps', namespace: s.markerNs, verb: 'create' })).toBe(0);
    expect(cluster.server.requests.count({ resource: 'configmaps', namespace: s.markerNs, verb: 'update' })).toBe(0);
    expect(await s.jobNames()).toHaveLength(2);
  });

  it('aborts the run when another run takes the lock over, and leaves that run its marker', async () => {
    const s = await scenario({ succeeded: 2 });
    // Heartbeats every 500 ms; the Job list takes long enough for a takeover to land before any delete.
    cluster.server.faults.add({ verb: 'list', resource: 'jobs', namespace: s.jobNs, latencyMs: 3000 });
    let ended: string | undefined;
    const running = runInProcess(s.args('v1', '--holder', 'slow/1', '--lock-timeout', '1500ms'));
    running.then((r) => (ended = `exit ${r.code}: ${r.stderr}`), (err: unknown) => (ended = String(err)));
    const cm = await untilMarkerStatus(s.marker, 'running', () => ended);
    // Unconditional (no resourceVersion), as a usurper's write would be: the run renews every 500 ms.
    const { resourceVersion: _read, ...metadata } = cm.metadata ?? {};
    await cluster.core.replaceNamespacedConfigMap({
      name: 'fleet-cleanup', namespace: s.markerNs,
      body: { ...cm, metadata, data: { ...cm.data, holder: 'usurper/9', renewedAt: new Date().toISOString() } },
    });

    const run = await running;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`fleet-cleanup: error: lost the lock on configmap ${s.markerNs}/fleet-cleanup: taken over by usurper/9 (status running)`);
    expect(s.jobDeletes()).toBe(0);
    expect((await s.marker())?.data).toMatchObject({ status: 'running', holder: 'usurper/9' });
  });

  describe('when the answer to a marker write is lost but the write was applied', () => {
    // The first matching request waits past --request-timeout, so the client gives up (a
    // timeout, retried like a dropped connection) and the server applies it afterwards; the
    // retry is held until then and meets our own write: 409. A dropped connection would not do:
    // the test server drops a request before applying it.
    const REQUEST_TIMEOUT = '1s';
    function loseFirstAnswer(verb: 'create' | 'update', namespace: string) {
      let firstApplied: () => void = () => {};
      const applied = new Promise<void>((resolve) => (firstApplied = resolve));
      let hits = 0;
      return cluster.server.faults.add({
        verb, resource: 'configmaps', namespace, times: 2,
        before: async () => {
          if (++hits === 1) {
            await sleep(1500);
            firstApplied();
          } else {
            await applied;
            await sleep(100); // the first request is applied as soon as its hook returns
          }
        },
      });
    }
    const ownWriteLogged = (run: CliRun) => run.lines.some((l) => l.msg.startsWith('the marker holds our own write'));

    it.each([
      ['creates the marker', undefined],
      ['updates a failed marker', failedMarker()],
    ])('takes the lock when it %s: the run cleans and the marker ends completed', async (_title, existing) => {
      const s = await scenario({ succeeded: 2 });
      if (existing) await s.writeMarker(existing);
      const fault = loseFirstAnswer(existing ? 'update' : 'create', s.markerNs);
      const run = await runInProcess(s.args('v1', '--request-timeout', REQUEST_TIMEOUT));
      expect(fault.hits).toBe(2);
      expect(run.stderr).not.toContain('another run is in progress');
      expect(run.code, run.stderr).toBe(0);
      expect(ownWriteLogged(run)).toBe(true);
      expect(run.audits('delete')).toHaveLength(2);
      expect(await s.jobNames()).toEqual([]);
      expect((await s.marker())?.data).toMatchObject({ status: 'completed', runKey: 'v1' });
    });

    it('keeps the lock when it renews: the run cleans and the marker ends completed', async () => {
      const s = await scenario({ succeeded: 16 });
      // Deletes one at a time, 250 ms each: the run outlasts the first heartbeat (2 s) and its retry.
      cluster.server.faults.add({ verb: 'delete', resource: 'jobs', namespace: s.jobNs, latencyMs: 250 });
      const fault = loseFirstAnswer('update', s.markerNs);
      const run = await runInProcess(s.args('v1', '--lock-timeout', '6s', '--request-timeout', REQUEST_TIMEOUT, '--concurrency', '1'));
      expect(fault.hits).toBe(2);
      expect(run.stderr).not.toContain('lost the lock');
      expect(run.code, run.stderr).toBe(0);
      expect(ownWriteLogged(run)).toBe(true);
      expect(run.audits('delete')).toHaveLength(16);
      expect((await s.marker())?.data).toMatchObject({ status: 'completed', runKey: 'v1' });
    });
    it('finishes on top of a heartbeat that failed but was applied', async () => {
      const s = await scenario();
      const kube = testKube(cluster.server.kubeconfig(), { retries: 0, requestTimeoutMs: 500 });
      const acquired = await acquireMarker(kube.access, {
        namespace: s.markerNs, name: 'fleet-cleanup', runKey: 'v1', holder: 'direct/1', force: false,
        lockTimeoutMs: 60_000, dryRun: false, now: () => new Date(), logger: kube.logger,
      });
      if (acquired.kind !== 'held') throw new Error(acquired.message);
      const taken = (await s.marker())?.data?.renewedAt;
      cluster.server.faults.add({ verb: 'update', resource: 'configmaps', namespace: s.markerNs, times: 1, before: () => sleep(800) });

      await acquired.lock.renew(); // times out, not retried: unconfirmed
      expect(kube.lines.some((l) => l.msg.startsWith('could not renew the marker lock'))).toBe(true);
      while ((await s.marker())?.data?.renewedAt === taken) await sleep(50); // ...but applied
      await acquired.lock.finish('completed', new Date(), undefined, '{}');
      expect(acquired.lock.lost.aborted).toBe(false);
      expect(kube.lines.some((l) => l.msg.startsWith('the marker holds an earlier write of ours'))).toBe(true);
      expect((await s.marker())?.data).toMatchObject({ status: 'completed', holder: 'direct/1' });
    });
  });

  it('refuses a ConfigMap of the same name that is not a marker', async () => {
    const s = await scenario();
    await cluster.core.createNamespacedConfigMap({ namespace: s.markerNs, body: { metadata: { name: 'fleet-cleanup' }, data: { mine: 'yes' } } });
    const run = await runInProcess(s.args('v1'));
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `fleet-cleanup: error: configmap ${s.markerNs}/fleet-cleanup exists but is not a fleet-cleanup marker (no label app.kubernetes.io/name=fleet-cleanup); choose another --marker-name\n`,
    );
    expect(s.jobLists()).toBe(0);
    expect((await s.marker())?.data).toEqual({ mine: 'yes' });
  });
});
