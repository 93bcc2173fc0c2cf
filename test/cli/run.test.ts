// The real `node src/main.ts` process against the API test server: exit codes, what stderr
// says, what the marker records.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MAIN, runProcess, seedGitRepoJobs, useTestCluster } from './harness.ts';

const cluster = useTestCluster();

let counter = 0;
async function scenario(succeeded = 2) {
  counter++;
  const markerNs = `run-marker-${counter}`;
  const jobNs = `run-jobs-${counter}`;
  await cluster.seeder.namespace(markerNs);
  await seedGitRepoJobs(cluster.seeder, jobNs, { succeeded });
  const args = (...extra: string[]) => ['--namespace', markerNs, '--job-namespaces', jobNs, '--run-key', 'r1', '--skip-oci', ...extra];
  const markerData = async () => (await cluster.core.readNamespacedConfigMap({ name: 'fleet-cleanup', namespace: markerNs })).data ?? {};
  const jobCount = async () => (await cluster.batch.listNamespacedJob({ namespace: jobNs })).items.length;
  return { markerNs, jobNs, args, markerData, jobCount };
}

const lines = (text: string) => text.split('\n').filter(Boolean);

describe('fleet-cleanup as a process', () => {
  it('cleans, exits 0, and writes only JSON lines to stdout; a second run skips, also 0', async () => {
    const s = await scenario(3);
    // The kubeconfig comes from KUBECONFIG here, as kubectl users expect.
    const first = await runProcess(s.args(), { KUBECONFIG: cluster.kubeconfigPath });
    expect(first.code).toBe(0);
    expect(first.audits('delete')).toHaveLength(3);
    expect(await s.jobCount()).toBe(0);
    expect(lines(first.stderr).at(-1)).toMatch(/^fleet-cleanup: completed: jobs deleted 3 kept 0 skipped 0 errors 0; oci skipped \(--skip-oci\); \d+ API requests in \d+\.\ds$/);
    expect(first.lines.at(-1)).toMatchObject({ level: 'info', msg: 'run finished', status: 'completed', summary: { jobs: { deleted: 3 } } });
    expect(JSON.stringify(first.lines)).not.toContain(cluster.server.adminToken);
    expect(first.lines.some((l) => l.phase === 'oci')).toBe(false);

    const second = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath));
    expect(second.code).toBe(0);
    expect(lines(second.stderr)).toEqual([expect.stringMatching(/^fleet-cleanup: already completed for run key r1 at \S+; nothing to do/)]);
  });

  it('runs the OCI phase after the GitRepo Job phase unless --skip-oci', async () => {
    const s = await scenario(1);
    const run = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath).filter((a) => a !== '--skip-oci'));
    expect(run.code).toBe(0);
    const starts = run.lines.filter((l) => /^phase \w+ starting$/.test(l.msg)).map((l) => l.phase);
    expect(starts).toEqual(['gitjobs', 'oci']);
    expect(JSON.parse((await s.markerData()).summary!).phases).toEqual({ gitjobs: 'completed', oci: expect.stringMatching(/^(completed|skipped)$/) });
  });

  it('exits 2 with one line when the kubeconfig is missing', async () => {
    const named = await runProcess(['--kubeconfig', join(cluster.dir, 'missing')]);
    expect(named.code).toBe(2);
    expect(named.stderr).toBe(`fleet-cleanup: error: kubeconfig ${join(cluster.dir, 'missing')} (from --kubeconfig): no such file\n`);

    const none = await runProcess([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe('fleet-cleanup: error: no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run inside a cluster\n');
    expect(none.lines).toEqual([expect.objectContaining({ level: 'error', msg: 'no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run inside a cluster' })]);
  });

  it('exits 1 with one line naming the server when the API server is unreachable', async () => {
    const port = await closedPort();
    const path = join(cluster.dir, 'unreachable');
    await writeFile(path, [
      'apiVersion: v1', 'kind: Config', 'current-context: c',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:' + port + '", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: not-a-real-token}}]',
      'contexts: [{name: c, context: {cluster: c, user: u}}]',
    ].join('\n'));
    const run = await runProcess(['--kubeconfig', path, '--retries', '1']);
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([
      `fleet-cleanup: error: cannot reach the Kubernetes API server https://127.0.0.1:${port}: get configmaps cattle-fleet-system/fleet-cleanup: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port} (gave up after 2 attempts)`,
    ]);
    expect(JSON.stringify(run.lines)).not.toContain('not-a-real-token');
  });

  it('exits 1 with one line naming the object when reading the marker is forbidden', async () => {
    const s = await scenario();
    cluster.server.faults.add({ verb: 'get', resource: 'configmaps', namespace: s.markerNs, status: 403, reason: 'Forbidden', message: 'configmaps "fleet-cleanup" is forbidden: User "system:serviceaccount:x:y" cannot get resource "configmaps"' });
    const run = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath));
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([
      `fleet-cleanup: error: get configmaps ${s.markerNs}/fleet-cleanup: 403 Forbidden: configmaps "fleet-cleanup" is forbidden: User "system:serviceaccount:x:y" cannot get resource "configmaps"`,
    ]);
    expect(cluster.server.requests.count({ verb: 'list', resource: 'jobs' })).toBe(0);
    expect(await s.jobCount()).toBe(2);
  });

  it('records partial when the time budget is spent, exits 1, and 0 with --partial-ok', async () => {
    const s = await scenario();
    // The Job list outlasts the budget, so the budget is spent before the first delete.
    const slowList = () => cluster.server.faults.add({ verb: 'list', resource: 'jobs', namespace: s.jobNs, latencyMs: 1500, times: 1 });
    slowList();
    const run = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath, '--time-budget', '500ms'));
    expect(run.code).toBe(1);
    expect(lines(run.stderr).at(-1)).toMatch(/^fleet-cleanup: partial: jobs deleted 0 .*; gitjobs partial \(time budget 500ms spent\);/);
    expect(await s.markerData()).toMatchObject({ status: 'partial', cause: 'gitjobs partial: time budget 500ms spent' });
    expect(await s.jobCount()).toBe(2);

    slowList();
    const ok = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath, '--time-budget', '500ms', '--partial-ok'));
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('(previous run ended partial: gitjobs partial: time budget 500ms spent)');
    expect((await s.markerData()).status).toBe('partial');
  });

  it('stops on SIGTERM between deletes and records partial', async () => {
    const s = await scenario();
    cluster.server.faults.add({ verb: 'list', resource: 'jobs', namespace: s.jobNs, latencyMs: 3000, times: 1 });
    const child = spawn(process.execPath, [MAIN, ...s.args('--kubeconfig', cluster.kubeconfigPath)], { env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    while ((await s.markerData().catch(() => ({}) as Record<string, string>)).status !== 'running') await sleep(50);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(await s.markerData()).toMatchObject({ status: 'partial', cause: 'gitjobs partial: received SIGTERM' });
    expect(lines(stderr).at(-1)).toMatch(/^fleet-cleanup: partial: /);
    expect(await s.jobCount()).toBe(2);
  });
});

/** A port nothing listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
