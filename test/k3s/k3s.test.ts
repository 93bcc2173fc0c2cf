// The scenarios of test/scenarios/ against a real k3s (testcontainers), plus what only a real
// cluster can show: the image built from the Dockerfile, run as the hook's Pod would be (the
// chart's securityContext: non-root, read-only root filesystem, no capabilities) under the
// chart's RBAC with in-cluster credentials. `npm run test:k3s`. Without a container runtime the
// suite skips and says why; it is the only suite allowed to skip under CI=true.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1PodSecurityContext, type V1ResourceRequirements, type V1SecurityContext } from '@kubernetes/client-node';
import { K3sContainer, type StartedK3sContainer } from '@testcontainers/k3s';
import { GenericContainer, getContainerRuntimeClient } from 'testcontainers';
import { runProcess } from '../cli/harness.ts';
import { installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';
import { applyChartRbac, chartRbacObjects, chartRules, chartValues, type ChartIdentity } from '../rbac/chart-objects.ts';
import { startRegistry, type TestRegistry } from '../registry/registry.ts';
import { requireTools } from '../registry/tools.ts';
import { writeTokenKubeconfig, type ClusterHandle } from '../scenarios/cluster.ts';
import { cleansFinishedGitRepoJobs, runsAsTheChartServiceAccount, runsOncePerRunKey, sweepsStaleOciStorage } from '../scenarios/scenarios.ts';
import { jobNames, markerData, seedGitJobs } from '../scenarios/world.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// 1.32+: seeded Jobs carry spec.managedBy (JobManagedBy is on by default from 1.32), so the
// Job controller neither runs them nor rewrites the status the seed writes.
const K3S_IMAGE = process.env.K3S_IMAGE ?? 'rancher/k3s:v1.32.3-k3s1';
const JOB_IMAGE = 'fleet-cleanup:k3s-test';

/** Cheap: testcontainers finds no runtime in about a second when there is none. */
async function runtimeUnavailable(): Promise<string | undefined> {
  try {
    await getContainerRuntimeClient();
    return undefined;
  } catch (err) {
    return `no container runtime (${err instanceof Error ? err.message : String(err)}); k3s needs Docker or a compatible runtime`;
  }
}

const skipReason = await runtimeUnavailable();
if (skipReason) {
  describe('k3s suite', () => {
    it('prerequisites', (ctx) => {
      console.warn(`skipping the k3s suite: ${skipReason}`);
      ctx.skip(skipReason);
    });
  });
}

describe.skipIf(skipReason)('against k3s', () => {
  let k3s: StartedK3sContainer;
  let dir: string;
  let cluster: ClusterHandle;
  let registry: TestRegistry | undefined;
  // Under CI=true a missing registry binary fails here (requireTools throws); outside CI the OCI scenario skips.
  const registryMissing = skipReason ? undefined : requireTools('docker-registry', 'skopeo');

  beforeAll(async () => {
    k3s = await new K3sContainer(K3S_IMAGE).start();
    dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-k3s-'));
    const kubeconfigPath = join(dir, 'kubeconfig-admin');
    await writeFile(kubeconfigPath, k3s.getKubeConfig(), { mode: 0o600 });
    const kubeConfig = kubeConfigFromYaml(k3s.getKubeConfig());
    const core = kubeConfig.makeApiClient(CoreV1Api);
    cluster = {
      name: 'k3s',
      kubeConfig,
      kubeconfigPath,
      runJob: (args) => runProcess(args),
      // A bound token from the TokenRequest API, as a Pod would be given.
      async serviceAccountKubeconfig(namespace, name) {
        const request = await core.createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
        const token = request.status?.token;
        if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
        return writeTokenKubeconfig(kubeConfig, token, dir, `${namespace}-${name}`);
      },
      jobManagedBy: 'fleet-cleanup.test/seed',
    };
    await installFleetCrds(kubeConfig, 60_000);
    if (!registryMissing) registry = await startRegistry();
  });

  afterAll(async () => {
    await registry?.dispose();
    await k3s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('deletes finished GitRepo Jobs and nothing else', () => cleansFinishedGitRepoJobs(cluster));
  it('runs once per run key; --force runs again', () => runsOncePerRunKey(cluster));
  it.skipIf(registryMissing)(`sweeps stale OCI storage in a registry on the host${registryMissing ? ` (skipped: ${registryMissing})` : ''}`, () => sweepsStaleOciStorage(cluster, registry!));
  it('runs as the chart’s ServiceAccount under exactly the chart’s rules (kube’s own RBAC)', () => runsAsTheChartServiceAccount(cluster, registry));

  it('the image from the Dockerfile runs in-cluster as the hook Pod: non-root, read-only root filesystem, chart RBAC', async () => {
    await loadImage(k3s, dir);
    const id: ChartIdentity = { namespace: 'incluster-system', name: 'incluster-fleet-cleanup' };
    const rules = await chartRules();
    await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: id.namespace } } });
    await applyChartRbac(cluster.kubeConfig, chartRbacObjects(id, rules));
    const jobs = await seedGitJobs(cluster, 'incluster-jobs');

    const job = await hookJob(id, rules.markerName);
    const finished = await runToCompletion(cluster.kubeConfig, job);
    const logs = await podLogs(cluster.kubeConfig, id.namespace, job.metadata!.name!);

    expect(finished.status?.succeeded, logs).toBe(1);
    // Logs are JSON lines on stdout; nothing was written to the read-only filesystem.
    for (const line of logs.split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
    expect(await jobNames(cluster, jobs.namespace)).toEqual(jobs.kept);
    const marker = await markerData(cluster, id.namespace, rules.markerName);
    expect(marker).toMatchObject({ status: 'completed', runKey: 'fleet-cleanup-in-cluster', holder: expect.stringMatching(/^incluster-hook-/) });
  });
});

/** Builds the image and imports it into k3s's containerd (the Pod uses imagePullPolicy Never). */
async function loadImage(k3s: StartedK3sContainer, dir: string): Promise<void> {
  await GenericContainer.fromDockerfile(ROOT).build(JOB_IMAGE, { deleteOnExit: false });
  const client = await getContainerRuntimeClient();
  const tar = join(dir, 'image.tar');
  await pipeline(await client.container.dockerode.getImage(JOB_IMAGE).get(), createWriteStream(tar));
  await k3s.copyFilesToContainer([{ source: tar, target: '/tmp/fleet-cleanup-image.tar' }]);
  const imported = await k3s.exec(['ctr', '-n', 'k8s.io', 'images', 'import', '/tmp/fleet-cleanup-image.tar']);
  expect(imported.exitCode, imported.output).toBe(0);
}

/** The hook Job as the chart renders it with its default values (helm is not needed to build it). */
async function hookJob(id: ChartIdentity, markerName: string): Promise<V1Job> {
  const values = (await chartValues()) as unknown as {
    hook: { timeBudget: string; activeDeadlineSeconds: number };
    podSecurityContext: V1PodSecurityContext;
    securityContext: V1SecurityContext;
    resources: V1ResourceRequirements;
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'incluster-hook', namespace: id.namespace },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: values.hook.activeDeadlineSeconds,
      template: {
        spec: {
          serviceAccountName: id.name,
          restartPolicy: 'Never',
          enableServiceLinks: false,
          securityContext: values.podSecurityContext,
          containers: [{
            name: 'fleet-cleanup',
            image: JOB_IMAGE,
            imagePullPolicy: 'Never',
            // The registry of the OCI scenarios listens on the host's loopback, out of a Pod's reach.
            args: [`--namespace=${id.namespace}`, `--marker-name=${markerName}`, `--time-budget=${values.hook.timeBudget}`, '--partial-ok', '--min-age=1h', '--skip-oci'],
            env: [
              { name: 'FLEET_CLEANUP_RUN_KEY', value: 'fleet-cleanup-in-cluster' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            ],
            securityContext: values.securityContext,
            resources: values.resources,
          }],
        },
      },
    },
  };
}

async function runToCompletion(kubeConfig: KubeConfig, job: V1Job): Promise<V1Job> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const { namespace, name } = job.metadata as { namespace: string; name: string };
  await batch.createNamespacedJob({ namespace, body: job });
  for (;;) {
    const current = await batch.readNamespacedJob({ namespace, name });
    const done = current.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    if (done) return current;
    await sleep(1000);
  }
}

async function podLogs(kubeConfig: KubeConfig, namespace: string, jobName: string): Promise<string> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` });
  const pod = pods.items[0];
  if (!pod) return '(no pod)';
  return core.readNamespacedPodLog({ namespace, name: pod.metadata!.name! });
}
