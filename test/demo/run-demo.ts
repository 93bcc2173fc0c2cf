// `npm run demo`: the real job, twice, against the API test server seeded like a Fleet
// management cluster. Prints what went and what stayed, and the marker. Nothing in src/ knows.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';
import type { DemoContext, OciDemoStep } from './seam.ts';
import { seedFleet, type SeededJobRecord } from './seed.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const OCI_DEMO = new URL('./oci-demo.ts', import.meta.url);
const MARKER_NAMESPACE = 'cattle-fleet-system';
const RUN_KEY = 'demo-1';

const print = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-demo-'));
  let server: TestApiServer | undefined;
  let oci: OciDemoStep | undefined;
  try {
    server = await startApiServer();
    const kubeconfigPath = join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfigPath);
    const kubeConfig = kubeConfigFromYaml(server.kubeconfig());
    const seeder = new FleetSeeder(kubeConfig);
    print(`API test server at ${server.url}; kubeconfig ${kubeconfigPath}`);

    await installFleetCrds(kubeConfig);
    await seeder.namespace(MARKER_NAMESPACE);
    const seeded = await seedFleet(seeder);
    print(`seeded ${seeded.gitRepos} GitRepos and ${seeded.jobs.length} Jobs (${countPods(seeded.jobs)} Pods) in ${namespacesOf(seeded.jobs).join(', ')}`);

    const context: DemoContext = { server, kubeConfig, kubeconfigPath, seeder, dir, print };
    oci = await loadOciStep(context);
    const ociArgs = oci?.args ?? ['--skip-oci'];

    const args = ['--kubeconfig', kubeconfigPath, '--namespace', MARKER_NAMESPACE, '--run-key', RUN_KEY, '--keep-last', '2', ...ociArgs];
    print();
    print(`$ fleet-cleanup ${args.join(' ')}`);
    const first = await runJob(args, join(dir, 'run-1.log'));
    print();
    print(`$ fleet-cleanup ${args.join(' ')}    # again: the marker says it is done`);
    const second = await runJob(args, join(dir, 'run-2.log'));

    print();
    await reportJobs(kubeConfig, seeded.jobs);
    print('  kept: running and failed Jobs, Jobs finished less than --min-age (1h) ago, the 2 newest');
    print('  succeeded Jobs of each GitRepo (--keep-last 2), and every Job not owned by a GitRepo');
    printAuditSample(first.log);
    if (oci) for (const line of await oci.report()) print(line);
    await reportMarker(kubeConfig);
    print();
    print(process.env.DEMO_KEEP ? `JSON logs kept in ${dir}` : 'DEMO_KEEP=1 keeps the JSON logs of both runs');

    if (first.code !== 0 || second.code !== 0) {
      print(`demo: the job exited ${first.code} and ${second.code}; expected 0 and 0`);
      return 1;
    }
    return 0;
  } finally {
    await oci?.stop();
    await server?.close();
    // Keep the logs for a look afterwards only when asked.
    if (!process.env.DEMO_KEEP) await rm(dir, { recursive: true, force: true });
  }
}

/** The OCI part of the demo lives in its own module, added by the OCI work; absent, OCI is skipped. */
async function loadOciStep(context: DemoContext): Promise<OciDemoStep | undefined> {
  if (!existsSync(OCI_DEMO)) return undefined;
  const module = (await import(OCI_DEMO.href)) as { seedOciDemo?: (c: DemoContext) => Promise<OciDemoStep | undefined> };
  return module.seedOciDemo ? module.seedOciDemo(context) : undefined;
}

/** The real command as a child process: its readable lines go to the terminal, its JSON log to a file. */
function runJob(args: string[], logPath: string): Promise<{ code: number; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    const log: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => log.push(d));
    child.stderr.on('data', (d: Buffer) => process.stdout.write(d.toString().replace(/^(?=.)/gm, '  ')));
    child.on('error', reject);
    child.on('close', (code) => {
      const text = Buffer.concat(log).toString();
      writeFile(logPath, text).then(() => resolve({ code: code ?? 1, log: text }), reject);
    });
  });
}

async function reportJobs(kubeConfig: ReturnType<typeof kubeConfigFromYaml>, seeded: SeededJobRecord[]): Promise<void> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const left = new Set(((await batch.listJobForAllNamespaces()).items as V1Job[]).map((j) => `${j.metadata?.namespace}/${j.metadata?.name}`));
  const podsLeft = new Set((await core.listPodForAllNamespaces()).items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));

  print('Jobs by namespace and state (deleted / kept):');
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
  const deletedJobs = seeded.filter((j) => !left.has(`${j.namespace}/${j.name}`));
  const orphanPods = deletedJobs.filter((j) => j.pod && podsLeft.has(`${j.namespace}/${j.pod}`)).length;
  print(`  Pods of deleted Jobs still present: ${orphanPods} (they go with their Job: propagationPolicy Background)`);
}

async function reportMarker(kubeConfig: ReturnType<typeof kubeConfigFromYaml>): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const cm = await core.readNamespacedConfigMap({ name: 'fleet-cleanup', namespace: MARKER_NAMESPACE });
  const data = cm.data ?? {};
  print();
  print(`Marker configmap ${MARKER_NAMESPACE}/fleet-cleanup:`);
  for (const key of ['status', 'runKey', 'holder', 'startedAt', 'finishedAt', 'cause']) {
    if (data[key] !== undefined) print(`  ${key.padEnd(11)} ${data[key]}`);
  }
  if (data.summary) print(`  summary     ${JSON.stringify(JSON.parse(data.summary))}`);
}

/** Two of the audit lines an operator would grep for (one JSON line per deletion). */
function printAuditSample(log: string): void {
  const audits = log.split('\n').filter((l) => l.includes('"audit":true'));
  print();
  print(`Audit log: ${audits.length} lines like`);
  for (const line of audits.slice(0, 2)) print(`  ${line}`);
}

function countPods(jobs: SeededJobRecord[]): number {
  return jobs.filter((j) => j.pod).length;
}

function namespacesOf(jobs: SeededJobRecord[]): string[] {
  return [...new Set(jobs.map((j) => j.namespace))].sort();
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
