// A small believable Fleet installation, seeded through a ClusterHandle, and the reads a
// person would use to check what the job did: which Jobs are left, does the artifact's
// `latest` still resolve, which secrets are left, what the marker says.
import { ApiException, BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { FleetSeeder, foreignJobObject, gitJobObject, type GitRepoRef, type JobState } from '../fixtures/fleet-objects.ts';
import { clusterNamespace, deploymentId, OciSeeder, type SeededSecret } from '../fixtures/oci-objects.ts';
import { pushFleetArtifact } from '../registry/push.ts';
import { rawGet } from '../registry/raw-http.ts';
import type { TestRegistry } from '../registry/registry.ts';
import type { ClusterHandle } from './cluster.ts';

const HOUR = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms);

export interface SeededJobs {
  namespace: string;
  /** Succeeded GitRepo Jobs finished 2 h ago: past the default --min-age of 1 h. */
  deletable: string[];
  /** Failed, running, finished 10 min ago, and a CronJob's old succeeded Job. */
  kept: string[];
}

/** Creates `job` with its status (and no Pod: on k3s a Pod would really be scheduled). */
async function seedJob(cluster: ClusterHandle, seeder: FleetSeeder, job: V1Job, state: JobState, finishedAt: Date): Promise<string> {
  if (cluster.jobManagedBy) job.spec!.managedBy = cluster.jobManagedBy;
  const { job: created } = await seeder.job(job, { state, finishedAt, withPod: false });
  return created.metadata!.name!;
}

export async function seedGitJobs(cluster: ClusterHandle, namespace: string, succeededOld = 2): Promise<SeededJobs> {
  const seeder = new FleetSeeder(cluster.kubeConfig);
  await seeder.namespace(namespace);
  const repo: GitRepoRef = await seeder.gitRepo(namespace, 'app');
  const gitJob = (state: JobState, finishedAt: Date) => seedJob(cluster, seeder, gitJobObject({ gitRepo: repo }), state, finishedAt);
  const deletable: string[] = [];
  for (let i = 0; i < succeededOld; i++) deletable.push(await gitJob('succeeded', ago(2 * HOUR)));
  const kept = [await gitJob('failed', ago(2 * HOUR)), await gitJob('running', new Date()), await gitJob('succeeded', ago(HOUR / 6))];
  // Not Fleet's: a Job owned by a CronJob (which exists, suspended) is never touched.
  const cron = await seeder.batch.createNamespacedCronJob({
    namespace,
    body: { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'backup', namespace }, spec: { schedule: '0 3 * * *', suspend: true, jobTemplate: { spec: foreignJobObject({ namespace, name: 'backup' }).spec! } } },
  });
  const owner = { apiVersion: 'batch/v1', kind: 'CronJob', name: 'backup', uid: cron.metadata!.uid!, controller: true, blockOwnerDeletion: true };
  kept.push(await seedJob(cluster, seeder, foreignJobObject({ namespace, name: 'backup-29000000', owner }), 'succeeded', ago(2 * HOUR)));
  return { namespace, deletable: deletable.sort(), kept: kept.sort() };
}

export async function jobNames(cluster: ClusterHandle, namespace: string): Promise<string[]> {
  const jobs = await cluster.kubeConfig.makeApiClient(BatchV1Api).listNamespacedJob({ namespace });
  return jobs.items.map((j) => j.metadata!.name!).sort();
}

export interface OciArtifact {
  contentsId: string;
  repository: string;
  secrets: SeededSecret[];
}

export interface SeededOci {
  /** Used by a Bundle (and deployed by a BundleDeployment). */
  inUse: OciArtifact;
  /** Its Bundle is gone; Fleet failed to delete it: only the secrets still point at it. */
  stale: OciArtifact;
  /** 200 while `latest` resolves, 404 once deleted. */
  status(a: OciArtifact): Promise<number>;
  /** Which of `secrets` still exist, as namespace/name. */
  secretsLeft(secrets: SeededSecret[]): Promise<string[]>;
  connectionSecret: SeededSecret;
}

/**
 * One Fleet workspace (`<prefix>-fleet-default` and one cluster namespace) storing bundles in
 * `registry` under its own repository prefix, so that worlds seeded on one cluster stay apart.
 */
export async function seedOci(cluster: ClusterHandle, registry: TestRegistry, prefix: string): Promise<SeededOci> {
  const seeder = new OciSeeder(cluster.kubeConfig);
  const bundleNs = `${prefix}-fleet-default`;
  const clusterNs = clusterNamespace(`${prefix}-downstream`);
  for (const ns of [bundleNs, clusterNs]) await seeder.namespace(ns);
  const conn = registry.connection(`fleet/${prefix}`);
  const connectionSecret = await seeder.connectionSecret(bundleNs, conn);
  const push = async (name: string, used: boolean): Promise<OciArtifact> => {
    const { contentsId } = await pushFleetArtifact({ registry, prefix: `fleet/${prefix}` }, { created: ago(48 * HOUR) });
    const bundle = used ? await seeder.bundle(bundleNs, name, contentsId) : undefined;
    if (used) await seeder.bundleDeployment(clusterNs, name, { deploymentID: deploymentId(contentsId) });
    const secrets = await seeder.artifactSecrets(contentsId, conn, { bundle: bundleNs, clusters: [clusterNs] }, bundle);
    return { contentsId, repository: `fleet/${prefix}/${contentsId}`, secrets };
  };
  return {
    inUse: await push('app', true),
    stale: await push('old-app', false),
    status: async (a) => (await rawGet(registry, `/v2/${a.repository}/manifests/latest`, 'application/vnd.oci.image.manifest.v1+json')).status,
    secretsLeft: (secrets) => seeder.existing(secrets),
    connectionSecret,
  };
}

/** The marker's data, or undefined when there is none. */
export async function markerData(cluster: ClusterHandle, namespace: string, name = 'fleet-cleanup'): Promise<Record<string, string> | undefined> {
  try {
    return (await cluster.kubeConfig.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name })).data ?? {};
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

/** The Events recorded on the marker ConfigMap, oldest first, as `type reason: message` with the object they name. */
export async function markerEvents(cluster: ClusterHandle, namespace: string, name = 'fleet-cleanup'): Promise<Array<{ type: string; reason: string; message: string; uid: string }>> {
  const list = await cluster.kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=ConfigMap,involvedObject.name=${name}` });
  return list.items
    .sort((a, b) => (a.lastTimestamp?.getTime() ?? 0) - (b.lastTimestamp?.getTime() ?? 0) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '', uid: e.involvedObject.uid ?? '' }));
}
