// `npm run demo`: the operator's own path on the embedded cluster. The API test server with a
// Job runner (the Job controller and kubelet, running this checkout's build of the image) is
// seeded like a Fleet management cluster; then the commands an operator types run with the
// pinned helm and kubectl, each printed with its output, exit code and time: helm install,
// kubectl logs of the hook, the marker, helm upgrade (skips), the manual rerun. Nothing in
// src/ knows.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';
import { NAMESPACE, RELEASE, startEmbeddedCluster, type EmbeddedCluster, type OperatorCommand } from '../operator/embedded.ts';
import type { DemoContext, OciDemoStep } from './seam.ts';
import { seedFleet, type SeededJobRecord } from './seed.ts';

const OCI_DEMO = new URL('./oci-demo.ts', import.meta.url);
const SHOWN_LINES = 14;

const print = (line = '') => process.stdout.write(`${line}\n`);

function show(cmd: OperatorCommand): void {
  const out = `${cmd.stdout}${cmd.stderr}`.replace(/\n$/, '');
  const lines = out === '' ? [] : out.split('\n');
  for (const l of lines.slice(0, SHOWN_LINES)) print(`  ${l.length > 200 ? `${l.slice(0, 199)}…` : l}`);
  if (lines.length > SHOWN_LINES) print(`  … ${lines.length - SHOWN_LINES} more lines`);
  print(`  (exit ${cmd.code}, ${(cmd.ms / 1000).toFixed(1)}s)`);
  print();
}

async function main(): Promise<number> {
  print('building the image (npm run build: the rolldown bundle → dist/) and starting the embedded cluster: API test server, Job runner, pinned helm and kubectl');
  const cluster = await startEmbeddedCluster({ onStart: (line) => print(`$ ${line}`), onEnd: show });
  let oci: OciDemoStep | undefined;
  try {
    const kubeConfig = kubeConfigFromYaml(cluster.server.kubeconfig());
    const seeder = new FleetSeeder(kubeConfig);
    print(`API test server at ${cluster.server.url}; kubeconfig ${cluster.kubeconfigPath}`);
    const sandbox = cluster.runner.sandbox;
    print(`Job runner: ${sandbox.kind === 'namespace' ? 'containers in a private mount namespace, read-only root, runAsUser, cgroup memory limit' : `plain child processes (${sandbox.reason})`}`);
    await installFleetCrds(kubeConfig);
    await seeder.namespace(NAMESPACE);
    const seeded = await seedFleet(seeder);
    print(`seeded ${seeded.gitRepos} GitRepos and ${seeded.jobs.length} Jobs (${seeded.jobs.filter((j) => j.pod).length} Pods) in ${[...new Set(seeded.jobs.map((j) => j.namespace))].sort().join(', ')}`);
    const context: DemoContext = { server: cluster.server, kubeConfig, kubeconfigPath: cluster.kubeconfigPath, seeder, dir: join(cluster.kubeconfigPath, '..'), print };
    oci = await loadOciStep(context);
    print();

    const n = ['-n', NAMESPACE];
    const helm = (args: string[], shown: string) => cluster.run('helm', args, { shown });
    const kubectl = (...args: string[]) => cluster.run('kubectl', args);
    const chart = join(import.meta.dirname, '..', '..', 'helm-hook');
    const values = ['--set', 'gitjobs.keepLast=2', ...(oci ? [] : ['--set', 'oci.enabled=false'])];
    const shownValues = values.join(' ');

    const install = await helm(['install', RELEASE, chart, ...n, ...values], `helm install ${RELEASE} ./helm-hook -n ${NAMESPACE} ${shownValues}`);
    await kubectl('logs', `job/${RELEASE}`, ...n, '--tail=3');
    await kubectl('get', 'configmap', 'fleet-cleanup', ...n, '-o', 'jsonpath={.data.status}');
    const upgrade = await helm(['upgrade', RELEASE, chart, ...n, ...values], `helm upgrade ${RELEASE} ./helm-hook -n ${NAMESPACE} ${shownValues}    # same chart version: the hook skips`);
    const hookPods = cluster.runner.containers.filter((c) => c.namespace === NAMESPACE);
    const skipped = hookPods.at(-1);
    if (skipped) print(`  the hook Pod ${skipped.pod} said: ${oneLine(cluster.runner.log(NAMESPACE, skipped.pod, skipped.container), 'already completed')}\n`);
    const manual = 'fleet-cleanup-manual-1';
    const create = await kubectl('create', 'job', `--from=cronjob/${RELEASE}`, manual, ...n);
    const wait = await kubectl('wait', '--for=condition=complete', `job/${manual}`, ...n, '--timeout=300s');
    await kubectl('logs', `job/${manual}`, ...n, '--tail=3');
    await kubectl('get', 'configmap', 'fleet-cleanup', ...n, '-o', 'jsonpath={.data.status}');

    await reportJobs(kubeConfig, seeded.jobs);
    if (oci) for (const line of await oci.report()) print(line);
    const first = hookPods[0];
    if (first) {
      print();
      print(`The hook ran as ${first.pod}: uid ${first.uid}, read-only root ${first.readOnlyRoot ? 'yes' : 'no'}, memory limit ${first.memoryLimitBytes ?? 'none'} bytes (cgroup), ServiceAccount ${first.serviceAccount}, exit ${first.exitCode}`);
    }
    print();
    print('Operator commands:');
    for (const c of cluster.transcript) print(`  exit ${c.code}  ${(c.ms / 1000).toFixed(1).padStart(5)}s  ${c.line.replace(/ {4}#.*$/, '')}`);
    const failed = [install, upgrade, create, wait].filter((c) => c.code !== 0);
    if (failed.length > 0) {
      print(`demo: ${failed.map((c) => c.line).join('; ')} failed`);
      return 1;
    }
    return 0;
  } finally {
    await oci?.stop();
    await cluster.close();
  }
}

const oneLine = (log: string, containing: string) => log.split('\n').find((l) => l.includes(containing) && !l.startsWith('{')) ?? '(no such line)';

/** The OCI part of the demo lives in its own module (seam.ts); absent, the chart runs with oci.enabled=false. */
async function loadOciStep(context: DemoContext): Promise<OciDemoStep | undefined> {
  if (!existsSync(OCI_DEMO)) return undefined;
  const module = (await import(OCI_DEMO.href)) as { seedOciDemo?: (c: DemoContext) => Promise<OciDemoStep | undefined> };
  return module.seedOciDemo ? module.seedOciDemo(context) : undefined;
}

async function reportJobs(kubeConfig: ReturnType<typeof kubeConfigFromYaml>, seeded: SeededJobRecord[]): Promise<void> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const left = new Set(((await batch.listJobForAllNamespaces()).items as V1Job[]).map((j) => `${j.metadata?.namespace}/${j.metadata?.name}`));
  const podsLeft = new Set((await core.listPodForAllNamespaces()).items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
  print('Seeded Jobs by namespace and state (deleted / kept):');
  const rows = new Map<string, { deleted: number; kept: number }>();
  for (const job of seeded) {
    const key = `${job.namespace.padEnd(16)} ${job.label}`;
    const row = rows.get(key) ?? { deleted: 0, kept: 0 };
    if (left.has(`${job.namespace}/${job.name}`)) row.kept++;
    else row.deleted++;
    rows.set(key, row);
  }
  for (const [key, row] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
    print(`  ${key.padEnd(56)} deleted ${String(row.deleted).padStart(3)}   kept ${String(row.kept).padStart(3)}`);
  }
  const orphanPods = seeded.filter((j) => !left.has(`${j.namespace}/${j.name}`) && j.pod && podsLeft.has(`${j.namespace}/${j.pod}`)).length;
  print(`  Pods of deleted Jobs still present: ${orphanPods} (they go with their Job: propagationPolicy Background)`);
}

export type { EmbeddedCluster };

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
