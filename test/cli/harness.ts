// Runs the command the two ways the tests need: in this process through `cli()` (quick, and
// the API test server in this process keeps answering), or as the real `node src/main.ts`
// child process. Both return what a user sees: exit code, stderr, and the JSON log lines.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { BatchV1Api, CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { cli } from '../../src/cli/cli.ts';
import type { CliIo } from '../../src/cli/run.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml, type LogLine } from '../fixtures/kube.ts';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stderr: string;
  /** stdout parsed as JSON log lines. */
  lines: LogLine[];
  audits(action: 'delete' | 'would-delete' | 'skip'): LogLine[];
}

function result(code: number, stdout: string, stderr: string): CliRun {
  const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine);
  return { code, stderr, lines, audits: (action) => lines.filter((l) => l.audit === true && l.action === action) };
}

/** `env` replaces the environment: nothing of the test runner's (KUBECONFIG, ...) leaks in. `io`: a stop signal, the API client's clock. */
export async function runInProcess(args: string[], env: Record<string, string> = {}, io: Pick<CliIo, 'stop' | 'clock'> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        append(String(chunk));
        done();
      },
    });
  const cliIo: CliIo = {
    env,
    stdout: sink((t) => (stdout += t)),
    stderr: { write: (t: string) => (stderr += t) },
    podNamespace: () => undefined,
    ...io,
  };
  const code = await cli(args, cliIo);
  return result(code, stdout, stderr);
}

/** The real process, asynchronously: a synchronous spawn would freeze the in-process API server. */
export async function runProcess(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const { code, stdout, stderr } = await spawnNode(MAIN, args, { HOME: '/nonexistent', ...env });
  return result(code ?? -1, stdout, stderr);
}

/**
 * `node script args` with only PATH (and `env`) in its environment; resolves when it exits.
 * `kill`: aborting it SIGKILLs the process and everything it started (its own process group).
 */
export function spawnNode(script: string, args: string[], env: Record<string, string> = {}, kill?: AbortSignal): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, detached: kill !== undefined });
    kill?.addEventListener('abort', () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, { once: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The marker ConfigMap `name` in `namespace`; undefined when there is none (404), any other error thrown. */
export async function readMarker(core: CoreV1Api, namespace: string, name = 'fleet-cleanup'): Promise<V1ConfigMap | undefined> {
  try {
    return await core.readNamespacedConfigMap({ name, namespace });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/**
 * Polls the marker's status until it is `want`. `ended()` describes the run once it has ended
 * (exit code, stderr): a run that ends first fails the wait with that, instead of the test
 * hanging until its timeout.
 */
export async function untilMarkerStatus(read: () => Promise<V1ConfigMap | undefined>, want: string, ended: () => string | undefined): Promise<V1ConfigMap> {
  for (;;) {
    const cm = await read();
    if (cm?.data?.status === want) return cm;
    const end = ended();
    if (end !== undefined) throw new Error(`the run ended before its marker said ${want} (marker status ${cm?.data?.status ?? 'absent'}): ${end}`);
    await sleep(50);
  }
}

export interface TestCluster {
  server: TestApiServer;
  /** A scratch directory holding `kubeconfigPath`. */
  dir: string;
  kubeconfigPath: string;
  core: CoreV1Api;
  batch: BatchV1Api;
  seeder: FleetSeeder;
}

/**
 * Registers the hooks of a suite that runs against its own API test server with Fleet's CRDs:
 * the returned object is filled in before the first test; faults and request records are
 * cleared before each.
 */
export function useTestCluster(): TestCluster {
  const cluster = {} as TestCluster;
  beforeAll(async () => {
    cluster.server = await startApiServer();
    cluster.dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-test-'));
    cluster.kubeconfigPath = join(cluster.dir, 'kubeconfig');
    await cluster.server.writeKubeconfig(cluster.kubeconfigPath);
    const kc = kubeConfigFromYaml(cluster.server.kubeconfig());
    cluster.core = kc.makeApiClient(CoreV1Api);
    cluster.batch = kc.makeApiClient(BatchV1Api);
    cluster.seeder = new FleetSeeder(kc);
    await installFleetCrds(kc);
  });
  afterAll(async () => {
    try {
      // Rejects naming any request kube-apiserver would have refused (the request contract).
      await cluster.server?.close();
    } finally {
      if (cluster.dir) await rm(cluster.dir, { recursive: true, force: true });
    }
  });
  beforeEach(() => {
    cluster.server.faults.clear();
    cluster.server.requests.reset();
  });
  return cluster;
}

/** A GitRepo in `namespace` with Jobs finished two hours ago (older than the default --min-age). */
export async function seedGitRepoJobs(
  seeder: FleetSeeder,
  namespace: string,
  counts: { succeeded?: number; failed?: number; running?: number },
  gitRepo = 'app',
): Promise<void> {
  await seeder.namespace(namespace);
  const repo = await seeder.gitRepo(namespace, gitRepo);
  const finishedAt = new Date(Date.now() - 2 * 3_600_000);
  for (const state of ['succeeded', 'failed', 'running'] as const) {
    for (let i = 0; i < (counts[state] ?? 0); i++) await seeder.gitJob(repo, { state, finishedAt, withPod: false });
  }
}
