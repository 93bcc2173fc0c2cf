// The real `node src/main.ts` process against the API test server: exit codes, what stderr
// says, what the marker records.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { ago, BUNDLE_NS, gcEnv, MIN, type Artifact, type GcEnv } from '../oci/gc-env.ts';
import { describeWithTools } from '../registry/tools.ts';
import { MAIN, readMarker, runProcess, seedGitRepoJobs, untilMarkerStatus, useTestCluster } from './harness.ts';

const cluster = useTestCluster();

let counter = 0;
async function scenario(succeeded = 2) {
  counter++;
  const markerNs = `run-marker-${counter}`;
  const jobNs = `run-jobs-${counter}`;
  await cluster.seeder.namespace(markerNs);
  await seedGitRepoJobs(cluster.seeder, jobNs, { succeeded });
  const args = (...extra: string[]) => ['--namespace', markerNs, '--job-namespaces', jobNs, '--run-key', 'r1', '--skip-oci', ...extra];
  const marker = () => readMarker(cluster.core, markerNs);
  const markerData = async () => (await cluster.core.readNamespacedConfigMap({ name: 'fleet-cleanup', namespace: markerNs })).data ?? {};
  const jobCount = async () => (await cluster.batch.listNamespacedJob({ namespace: jobNs })).items.length;
  return { markerNs, jobNs, args, marker, markerData, jobCount };
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

  it('runs the OCI phase after the GitRepo Job phase unless --skip-oci; without a storage secret it is skipped', async () => {
    const s = await scenario(1);
    const run = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath).filter((a) => a !== '--skip-oci'));
    expect(run.code).toBe(0);
    const starts = run.lines.filter((l) => /^phase \w+ starting$/.test(l.msg)).map((l) => l.phase);
    expect(starts).toEqual(['gitjobs', 'oci']);
    expect(JSON.parse((await s.markerData()).summary!).phases).toEqual({ gitjobs: 'completed', oci: 'skipped' });
  });

  it('with --termination-log writes the summary line there as it exits (the container’s termination message)', async () => {
    const s = await scenario(2);
    const path = join(cluster.dir, `termination-log-${counter}`);
    const run = await runProcess(s.args('--kubeconfig', cluster.kubeconfigPath, '--termination-log', path));
    expect(run.code).toBe(0);
    const message = await readFile(path, 'utf8');
    expect(message).toMatch(/^completed: jobs deleted 2 kept 0 skipped 0 errors 0; oci skipped \(--skip-oci\); \d+ API requests in \d+\.\ds$/);
    expect(`fleet-cleanup: ${message}`).toBe(lines(run.stderr).at(-1));
    // An error is the message too.
    const failed = await runProcess(['--kubeconfig', join(cluster.dir, 'missing'), '--termination-log', path]);
    expect(failed.code).toBe(2);
    expect(await readFile(path, 'utf8')).toBe(`error: kubeconfig ${join(cluster.dir, 'missing')} (from --kubeconfig): no such file`);
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
    // Below the ephemeral range, so no other test's listen(0) can take it, and nothing serves it.
    // Not port 1: fetch refuses that one ("bad port") before connecting.
    const port = 2;
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
    onTestFinished(() => void child.kill('SIGKILL')); // a no-op once it has exited
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let ended: string | undefined;
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
      ended = `exit ${code}: ${stderr}`;
      resolve(code);
    }));
    await untilMarkerStatus(s.marker, 'running', () => ended);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(await s.markerData()).toMatchObject({ status: 'partial', cause: 'gitjobs partial: received SIGTERM' });
    expect(lines(stderr).at(-1)).toMatch(/^fleet-cleanup: partial: /);
    expect(await s.jobCount()).toBe(2);
  });
});

describe('fleet-cleanup as a process: the audit trail on stdout', () => {
  it('writes one whole audit line per Job it deleted, also when SIGTERM ends the run mid-way', async () => {
    const s = await scenario(200);
    let deletesAnswered = 0;
    const child = spawn(process.execPath, [MAIN, ...s.args('--kubeconfig', cluster.kubeconfigPath, '--concurrency', '4')], { env: { PATH: process.env.PATH ?? '' } });
    onTestFinished(() => void child.kill('SIGKILL'));
    // Slow deletes, and the signal once 60 have gone: the run stops with lines still being written.
    cluster.server.faults.add({ verb: 'delete', resource: 'jobs', namespace: s.jobNs, latencyMs: 5, before: () => {
      if (++deletesAnswered === 60) child.kill('SIGTERM');
    } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    const logged = lines(stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const deleted = cluster.server.requests.list({ verb: 'delete', resource: 'jobs' }).filter((r) => r.namespace === s.jobNs && r.status === 200).length;
    expect(deleted).toBeGreaterThanOrEqual(60);
    expect(deleted).toBeLessThan(200);
    expect(logged.filter((l) => l.audit === true && l.action === 'delete')).toHaveLength(deleted);
    expect(200 - (await s.jobCount())).toBe(deleted);
    expect(logged.at(-1)).toMatchObject({ msg: 'run finished', status: 'partial' });
  });
});

describeWithTools('fleet-cleanup as a process: the OCI flags against docker-registry', ['docker-registry', 'skopeo'], () => {
  let env: GcEnv | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('--oci-min-age lets a young stale artifact go; --mass-delete-ratio/-min brake the plan, --allow-mass-delete passes', async () => {
    env = await gcEnv();
    const e = env;
    const kubeconfig = join(cluster.dir, 'oci-kubeconfig');
    await e.server.writeKubeconfig(kubeconfig);
    let runs = 0;
    const run = (...flags: string[]) =>
      runProcess(['--kubeconfig', kubeconfig, '--namespace', BUNDLE_NS, '--job-namespaces', BUNDLE_NS, '--run-key', `oci-${++runs}`, ...flags]);
    const present = async (a: Artifact) => (await e.status(a)) === 200 && (await e.secretsLeft(a)).length === a.secrets.length;
    const gone = async (a: Artifact) => (await e.status(a)) === 404 && (await e.secretsLeft(a)).length === 0;
    const inUse = await e.artifacts(3, { use: 'bundle' });

    // Pushed five minutes ago: inside the default grace period (1h), past --oci-min-age=0.
    const young = await e.artifact({ use: 'none', created: ago(5 * MIN) });
    const keeps = await run();
    expect(keeps.code, keeps.stderr).toBe(0);
    expect(await present(young)).toBe(true);

    const deletes = await run('--oci-min-age=0');
    expect(deletes.code, deletes.stderr).toBe(0);
    expect(await gone(young)).toBe(true);

    // Two stale of the known artifacts: under the default brake (50%, more than 5), over 30% and more than 1.
    const stale = await e.artifacts(2, { use: 'none' });
    await e.mark();
    e.server.requests.reset();
    const braked = await run('--mass-delete-min=1', '--mass-delete-ratio=0.3');
    expect(braked.code, braked.stderr).toBe(1);
    expect(lines(braked.stderr).at(-1)).toMatch(/^fleet-cleanup: partial: .*mass-delete brake: 2 of \d+ known Fleet artifacts .* more than 30% and more than 1; nothing deleted/);
    expect(e.server.requests.count({ verb: 'delete' })).toBe(0);
    expect((await e.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
    for (const a of stale) expect(await present(a), a.repository).toBe(true);

    const allowed = await run('--mass-delete-min=1', '--mass-delete-ratio=0.3', '--allow-mass-delete');
    expect(allowed.code, allowed.stderr).toBe(0);
    for (const a of stale) expect(await gone(a), a.repository).toBe(true);
    for (const a of inUse) expect(await present(a), a.repository).toBe(true);
  }, 150_000); // four runs of the real process against a real registry: 46 s alone, past 60 s on a loaded 2-core machine
});
