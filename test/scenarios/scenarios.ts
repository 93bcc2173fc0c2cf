// The integration scenarios, written once and run against the API test server
// (test/scenarios/apiserver.test.ts) and against a real k3s (test/k3s/k3s.test.ts). Each seeds
// its own namespaces, runs the real job as a process, and checks what an operator would.
import { expect } from 'vitest';
import { FleetSeeder } from '../fixtures/fleet-objects.ts';
import type { CliRun } from '../cli/harness.ts';
import { applyChartRbac, chartRbacObjects, chartRules, type ChartIdentity, type ChartRules } from '../rbac/chart-objects.ts';
import type { TestRegistry } from '../registry/registry.ts';
import type { ClusterHandle } from './cluster.ts';
import { jobNames, markerData, markerEvents, seedGitJobs, seedOci, type SeededJobs, type SeededOci } from './world.ts';

const namespace = (cluster: ClusterHandle, name: string) => new FleetSeeder(cluster.kubeConfig).namespace(name);
const summaryOf = (data: Record<string, string> | undefined) => JSON.parse(data?.summary ?? '{}') as Record<string, { deleted?: number } | undefined>;
const deletedNames = (run: { audits(a: 'delete'): Array<Record<string, unknown>> }, kind: string) =>
  run.audits('delete').filter((l) => l.kind === kind).map((l) => String(l.name)).sort();

/** Finished GitRepo Jobs past --min-age go; failed, running, young and foreign Jobs stay. */
export async function cleansFinishedGitRepoJobs(cluster: ClusterHandle): Promise<void> {
  const release = 'sc-gitjobs-system';
  await namespace(cluster, release);
  const jobs = await seedGitJobs(cluster, 'sc-gitjobs');

  const run = await cluster.runJob(['--kubeconfig', cluster.kubeconfigPath, '--namespace', release, '--job-namespaces', jobs.namespace, '--skip-oci', '--run-key', 'gitjobs-1']);

  expect(run.code, run.stderr).toBe(0);
  expect(await jobNames(cluster, jobs.namespace)).toEqual(jobs.kept);
  expect(deletedNames(run, 'Job')).toEqual(jobs.deletable);
  expect(run.stderr).toMatch(/^fleet-cleanup: completed: jobs deleted 2 kept \d+ skipped 0 errors 0; oci skipped \(--skip-oci\)/m);
  const marker = await markerData(cluster, release);
  expect(marker).toMatchObject({ status: 'completed', runKey: 'gitjobs-1' });
  expect(summaryOf(marker).jobs).toMatchObject({ deleted: 2 });
}

/** The marker makes the job run once per run key; --force runs it again. */
export async function runsOncePerRunKey(cluster: ClusterHandle): Promise<void> {
  const release = 'sc-once-system';
  await namespace(cluster, release);
  const before = await seedGitJobs(cluster, 'sc-once-a', 1);
  const args = (...extra: string[]) => ['--kubeconfig', cluster.kubeconfigPath, '--namespace', release, '--job-namespaces', 'sc-once-a,sc-once-b', '--skip-oci', '--run-key', 'fleet-cleanup-0.1.0', ...extra];

  const first = await cluster.runJob(args());
  expect(first.code, first.stderr).toBe(0);
  expect(deletedNames(first, 'Job')).toEqual(before.deletable);
  const completed = await markerData(cluster, release);
  expect(completed).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.1.0', holder: expect.stringMatching(/\/\d+$/) });
  expect(Date.parse(completed!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(completed!.startedAt!));

  // Work that appears after the run waits for the next key (the next release), or --force.
  const after = await seedGitJobs(cluster, 'sc-once-b', 1);
  const again = await cluster.runJob(args());
  expect(again.code, again.stderr).toBe(0);
  expect(again.stderr).toMatch(/already completed for run key fleet-cleanup-0\.1\.0/);
  expect(again.audits('delete')).toEqual([]);
  expect(await jobNames(cluster, 'sc-once-b')).toEqual([...after.deletable, ...after.kept].sort());
  expect(await markerData(cluster, release)).toEqual(completed);

  const forced = await cluster.runJob(args('--force'));
  expect(forced.code, forced.stderr).toBe(0);
  expect(deletedNames(forced, 'Job')).toEqual(after.deletable);
  expect(await markerData(cluster, release)).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.1.0' });
}

/** A stale artifact (no Bundle, no BundleDeployment) goes from the registry with its secrets; one in use stays. */
export async function sweepsStaleOciStorage(cluster: ClusterHandle, registry: TestRegistry): Promise<void> {
  const release = 'sc-oci-system';
  await namespace(cluster, release);
  const oci = await seedOci(cluster, registry, 'sc-oci');

  const run = await cluster.runJob(['--kubeconfig', cluster.kubeconfigPath, '--namespace', release, '--skip-gitjobs', '--run-key', 'oci-1']);

  expect(run.code, run.stderr).toBe(0);
  expect(await oci.status(oci.stale)).toBe(404);
  expect(await oci.secretsLeft(oci.stale.secrets)).toEqual([]);
  expect(await oci.status(oci.inUse)).toBe(200);
  expect(await oci.secretsLeft(oci.inUse.secrets)).toHaveLength(oci.inUse.secrets.length);
  expect(await oci.secretsLeft([oci.connectionSecret])).toHaveLength(1);
  expect(deletedNames(run, 'OCIArtifact')).toContain(oci.stale.repository);
  expect(deletedNames(run, 'OCIArtifact')).not.toContain(oci.inUse.repository);
  const marker = await markerData(cluster, release);
  expect(marker).toMatchObject({ status: 'completed', runKey: 'oci-1' });
  expect(summaryOf(marker).ociArtifacts?.deleted).toBeGreaterThanOrEqual(1);
}

export interface ServiceAccountRun {
  run: CliRun;
  id: ChartIdentity;
  markerName: string;
  jobs: SeededJobs;
  oci: SeededOci | undefined;
}

/**
 * Creates the chart's ServiceAccount bound to `rules` (the chart's own, or less), seeds GitRepo
 * Jobs and (with a registry) OCI storage, and runs the job as that account with the hook's
 * arguments and the chart's default values. `label` keeps runs on one cluster apart.
 */
export async function runAsServiceAccount(cluster: ClusterHandle, registry: TestRegistry | undefined, rules: ChartRules, label: string): Promise<ServiceAccountRun> {
  const id: ChartIdentity = { namespace: `${label}-system`, name: `${label}-fleet-cleanup` };
  await namespace(cluster, id.namespace);
  await applyChartRbac(cluster.kubeConfig, chartRbacObjects(id, rules));
  const jobs = await seedGitJobs(cluster, `${label}-jobs`);
  const oci = registry ? await seedOci(cluster, registry, label) : undefined;
  const kubeconfig = await cluster.serviceAccountKubeconfig(id.namespace, id.name);
  const run = await cluster.runJob([
    '--kubeconfig', kubeconfig, '--namespace', id.namespace, '--marker-name', rules.markerName, '--run-key', 'fleet-cleanup-0.1.0',
    '--time-budget=200s', '--partial-ok', '--min-age=1h', '--keep-last=0', '--oci-min-age=1h', '--log-level=info',
  ]);
  return { run, id, markerName: rules.markerName, jobs, oci };
}

/**
 * The chart's ServiceAccount with exactly the chart's rules (helm-hook/files) runs the job as
 * the hook would, cluster-wide, and succeeds. Fleet 0.10.3 shipped a hook whose account could
 * not list Jobs: rules are proven by running under them, not assumed.
 */
export async function runsAsTheChartServiceAccount(cluster: ClusterHandle, registry: TestRegistry | undefined): Promise<void> {
  const { run, id, markerName, jobs, oci } = await runAsServiceAccount(cluster, registry, await chartRules(), 'sc-rbac');

  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).not.toMatch(/forbidden/i);
  expect(await jobNames(cluster, jobs.namespace)).toEqual(jobs.kept);
  if (oci) {
    expect(await oci.status(oci.stale)).toBe(404);
    expect(await oci.secretsLeft(oci.stale.secrets)).toEqual([]);
    expect(await oci.status(oci.inUse)).toBe(200);
  }
  expect(await markerData(cluster, id.namespace, markerName)).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-0.1.0' });
  // The Role's `create events` rule: the run's Event is on the marker, its message the summary line.
  const summary = run.stderr.trim().split('\n').at(-1)!.replace(/^fleet-cleanup: /, '');
  expect(await markerEvents(cluster, id.namespace, markerName)).toEqual([{ type: 'Normal', reason: 'CleanupCompleted', message: summary, uid: expect.any(String) }]);
}
