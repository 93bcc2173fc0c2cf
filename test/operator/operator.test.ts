// The operator's whole path on the embedded cluster, with the pinned helm and kubectl and the
// Job runner playing the Job controller and the kubelet: install, upgrades (same and new chart
// version), a registry that is down, broken RBAC, the manual rerun, rollback and uninstall.
// Each step asserts what an operator would look at: the command's exit code and output, the
// marker, `kubectl logs`.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadAllYaml } from '@kubernetes/client-node';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';
import { OciSeeder } from '../fixtures/oci-objects.ts';
import { seedFleet } from '../demo/seed.ts';
import { describeWithToolchain } from '../toolchain/describe.ts';
import { CHART_DIR, NAMESPACE, RELEASE, startEmbeddedCluster, type EmbeddedCluster } from './embedded.ts';

const SA_USER = `system:serviceaccount:${NAMESPACE}:${RELEASE}`;
const n = ['-n', NAMESPACE];

describeWithToolchain('the operator’s path: helm and kubectl on the embedded cluster', () => {
  let cluster: EmbeddedCluster;
  let seeder: FleetSeeder;
  const helm = (...args: string[]) => cluster.run('helm', args);
  const kubectl = (...args: string[]) => cluster.run('kubectl', args);
  const marker = async () => JSON.parse((await kubectl('get', 'configmap', 'fleet-cleanup', ...n, '-o', 'jsonpath={.data}')).stdout) as Record<string, string>;
  /** The hook Job's containers the runner started since `from`, with their output. */
  const hookRuns = (from: number) => cluster.runner.containers.slice(from).filter((c) => c.namespace === NAMESPACE);

  beforeAll(async () => {
    // 1 s instead of kube's 10 s before a failed hook Pod is retried keeps the RBAC step short
    cluster = await startEmbeddedCluster({ backoffBaseMs: 1000 });
    const kubeConfig = kubeConfigFromYaml(cluster.server.kubeconfig());
    await installFleetCrds(kubeConfig);
    seeder = new FleetSeeder(kubeConfig);
    await seeder.namespace(NAMESPACE);
    await seedFleet(seeder);
  }, 120_000);
  afterAll(async () => {
    for (const c of cluster?.transcript ?? []) console.log(`[operator] exit ${c.code} in ${(c.ms / 1000).toFixed(1)}s: ${c.line}`);
    await cluster?.close();
  });

  it('helm install: the hook runs under the chart’s ServiceAccount and RBAC, Helm waits for it, the marker says completed', async () => {
    const before = cluster.runner.containers.length;
    const install = await helm('install', RELEASE, CHART_DIR, ...n);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain('STATUS: deployed');
    expect(await marker()).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.1.0' });
    // the job ran as a kubelet runs it: in-cluster ServiceAccount, image user, read-only root, 256Mi cgroup
    const [run] = hookRuns(before);
    expect(run).toMatchObject({ pod: expect.stringMatching(/^fleet-cleanup-/), serviceAccount: RELEASE, exitCode: 0, reason: 'Completed' });
    expect(run).toMatchObject({ sandbox: 'namespace', uid: 65532, gid: 65532, readOnlyRoot: true, memoryLimitBytes: 256 * 2 ** 20 });
    const log = cluster.runner.log(NAMESPACE, run!.pod, 'fleet-cleanup');
    expect(log).toContain(`"server":"https://127.0.0.1:${new URL(cluster.server.url).port}"`);
    // the summary is the container's termination message (what `kubectl describe pod` shows)
    const pod = JSON.parse((await kubectl('get', 'pod', run!.pod, ...n, '-o', 'json')).stdout);
    expect(pod.status.containerStatuses[0].state.terminated.message).toMatch(/^completed: jobs deleted \d+ /);
    // every request of the run came with the ServiceAccount's token (the in-cluster configuration)
    // (Helm's own delete of the finished hook Job is in the release namespace)
    const deletes = cluster.server.requests.list({ verb: 'delete', group: 'batch', resource: 'jobs' }).filter((r) => r.namespace !== NAMESPACE);
    expect(deletes.length).toBeGreaterThan(10);
    expect(new Set(deletes.map((r) => r.user))).toEqual(new Set([SA_USER]));
  });

  it('helm upgrade with the same chart version: the hook skips through the marker', async () => {
    const { finishedAt } = await marker();
    const before = cluster.runner.containers.length;
    const upgrade = await helm('upgrade', RELEASE, CHART_DIR, ...n);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toMatch(/REVISION: 2/);
    const [run] = hookRuns(before);
    expect(cluster.runner.log(NAMESPACE, run!.pod, 'fleet-cleanup')).toContain('already completed for run key fleet-cleanup-0.1.0');
    expect(await marker()).toMatchObject({ status: 'completed', finishedAt });
  });

  it('helm upgrade to a new chart version: the hook runs again', async () => {
    const { finishedAt } = await marker();
    const upgrade = await helm('upgrade', RELEASE, await cluster.chartWithVersion('0.2.0'), ...n);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const after = await marker();
    expect(after).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.2.0' });
    expect(after['finishedAt']).not.toBe(finishedAt);
  });

  it('a registry that is down: the run ends partial and the upgrade still succeeds', async () => {
    const oci = new OciSeeder(kubeConfigFromYaml(cluster.server.kubeconfig()));
    const contentsId = `s-${randomBytes(31).toString('hex').slice(0, 61)}`;
    // an artifact record whose Bundle is gone, in a registry nobody answers on (port 2)
    const secrets = await oci.artifactSecrets(contentsId, { reference: '127.0.0.1:2/fleet/bundles', host: '127.0.0.1:2', pathPrefix: 'fleet/bundles', basicHTTP: true, insecureSkipTLS: false }, { bundle: 'fleet-default' });
    const upgrade = await helm('upgrade', RELEASE, await cluster.chartWithVersion('0.3.0'), ...n, '--set', 'oci.minAge=0s');
    expect(upgrade.code, upgrade.stderr).toBe(0);
    const m = await marker();
    expect(m).toMatchObject({ status: 'partial', runKey: 'fleet-cleanup-0.3.0' });
    expect(m['cause']).toMatch(/127\.0\.0\.1:2/);
    for (const s of secrets) expect((await kubectl('delete', 'secret', s.name, '-n', s.namespace)).code).toBe(0);
  });

  it('RBAC broken: the upgrade fails, and kubectl logs shows the one-line cause', async () => {
    const chart = await cluster.chartWithVersion('0.4.0');
    const upgrade = await helm('upgrade', RELEASE, chart, ...n, '--set', 'rbac.create=false');
    expect(upgrade.code).not.toBe(0);
    expect(upgrade.stderr).toMatch(/UPGRADE FAILED: post-upgrade hooks failed: .*job fleet-cleanup failed: BackoffLimitExceeded/s);
    const logs = await kubectl('logs', `job/${RELEASE}`, ...n);
    expect(logs.code, logs.stderr).toBe(0);
    const readable = logs.stdout.split('\n').filter((l) => l.startsWith('fleet-cleanup: '));
    expect(readable).toHaveLength(1);
    expect(readable[0]).toMatch(/^fleet-cleanup: .*forbidden.*system:serviceaccount:cattle-fleet-system:fleet-cleanup/);
    // repaired by the next upgrade: before-hook-creation replaces the failed Job
    const repaired = await helm('upgrade', RELEASE, chart, ...n);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(await marker()).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.4.0' });
  });

  it('manual rerun: kubectl create job --from=cronjob, kubectl wait, kubectl logs (audit lines), the marker', async () => {
    const repo = await seeder.gitRepo('fleet-local', 'late');
    for (let i = 0; i < 3; i++) await seeder.gitJob(repo, { state: 'succeeded', finishedAt: new Date(Date.now() - (5 + i) * 3_600_000), generation: i + 1 });
    expect((await kubectl('create', 'job', `--from=cronjob/${RELEASE}`, 'fleet-cleanup-manual-1', ...n)).stdout).toBe('job.batch/fleet-cleanup-manual-1 created\n');
    const wait = await kubectl('wait', '--for=condition=complete', 'job/fleet-cleanup-manual-1', ...n, '--timeout=120s');
    expect(wait.stdout).toBe('job.batch/fleet-cleanup-manual-1 condition met\n');
    const logs = await kubectl('logs', 'job/fleet-cleanup-manual-1', ...n);
    const audits = logs.stdout.split('\n').filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as { action: string; gitrepo: string });
    expect(audits).toHaveLength(3);
    expect(audits.every((a) => a.action === 'delete' && a.gitrepo === 'fleet-local/late')).toBe(true);
    expect((await kubectl('get', 'configmap', 'fleet-cleanup', ...n, '-o', 'jsonpath={.data.status}')).stdout).toBe('completed');
  });

  it('helm rollback to the first revision', async () => {
    const rollback = await helm('rollback', RELEASE, '1', ...n);
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toContain('Rollback was a success!');
    expect((await helm('list', ...n, '-o', 'json')).stdout).toMatch(/"chart":"fleet-cleanup-0\.1\.0"/);
  });

  it('helm uninstall removes every release object; the marker stays', async () => {
    const manifest = loadAllYaml((await helm('get', 'manifest', RELEASE, ...n)).stdout).filter(Boolean) as Array<{ kind: string; metadata: { name: string } }>;
    expect(manifest.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'CronJob', 'Role', 'RoleBinding', 'ServiceAccount']);
    const uninstall = await helm('uninstall', RELEASE, ...n);
    expect(uninstall.code, uninstall.stderr).toBe(0);
    expect(uninstall.stdout).toBe(`release "${RELEASE}" uninstalled\n`);
    for (const o of manifest) {
      const get = await kubectl('get', o.kind.toLowerCase(), o.metadata.name, ...n, '-o', 'name');
      expect(get.stderr, `${o.kind}/${o.metadata.name}`).toMatch(/NotFound/);
    }
    expect((await kubectl('get', 'secrets', ...n, '-l', 'owner=helm', '-o', 'name')).stdout).toBe('');
    // The manual Job went with its CronJob (garbage collection). Helm never deletes hook
    // resources on uninstall: the last hook Job stays for its logs until its TTL removes it.
    // The marker is no release object.
    expect((await kubectl('get', 'jobs', ...n, '-o', 'name')).stdout).toBe(`job.batch/${RELEASE}\n`);
    expect(Number((await kubectl('get', 'job', RELEASE, ...n, '-o', 'jsonpath={.spec.ttlSecondsAfterFinished}')).stdout)).toBeGreaterThan(0);
    expect((await kubectl('get', 'configmap', 'fleet-cleanup', ...n, '-o', 'jsonpath={.data.status}')).stdout).toBe('completed');
  });
}, { timeout: 300_000 }); // each step waits on hook Pods (node start-up is seconds on a loaded 2-core machine)
