// Benchmark (not a test): GitRepo Job cleanup side by side on one API test server state, with
// per-request latency on lists and deletes and an APF-like capacity per user:
//   - this job at the chart's defaults (its flags, time budget, memory and CPU limit) and tuned,
//   - kubectl delete jobs -A --field-selector status.successful=1 (the pinned kubectl 1.32 from the lockfile, test/toolchain/),
//   - a Fleet-equivalent (list everything, delete one at a time at 20 QPS; bench/peers/).
// Every peer runs as its own process inside a cgroup v1 memory group set to the chart's memory
// limit (the peers get no limit: they are measured, not judged) and a cpuacct group. Slow peers
// are measured over a time window on the same state and reported as rates. Prints one table,
// then the SIGTERM and time-budget stops. `node bench/compare.ts --help`.
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadYaml, type V1Job } from '@kubernetes/client-node';
import { ApiServer } from '../test/apiserver/server.ts';
import { kubeconfigYaml } from '../test/apiserver/kubeconfig.ts';
import type { KubeObject } from '../test/apiserver/types.ts';
import { gitJobObject, gitRepoObject, installFleetCrds, jobStatus, namespaceObject, type GitRepoRef } from '../test/fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../test/fixtures/kube.ts';
import { tool } from '../test/toolchain/index.ts';
import { buildImage } from '../test/jobrunner/image.ts';
import { Confined, cgroupsAvailable, type Limits, type Usage } from './cgroup.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    'latency-ms': { type: 'string', default: '10' },
    /** Seconds of deleting over which a slow peer's rate is measured. */
    window: { type: 'string', default: '20' },
    'tuned-concurrency': { type: 'string', default: '128' },
    /** The server's capacity per user: requests executing at once, then queued, then 429. */
    seats: { type: 'string', default: '64' },
    queue: { type: 'string', default: '64' },
    peers: { type: 'string', default: 'defaults,tuned,kubectl,fleet' },
    /** A file that gets the job's stdout (its JSON log, and what flags such as --trace-gc print). */
    'job-log': { type: 'string', default: '' },
    /** Extra node flags for the job's process, e.g. --cpu-prof. */
    'job-node-flags': { type: 'string', default: '' },
    /** Run the job under the chart's CPU limit too (its memory limit always applies). */
    'cpu-limit': { type: 'boolean', default: true },
    /** Measure the SIGTERM and time-budget stops after the table. */
    stops: { type: 'boolean', default: true },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowNegative: true,
});
if (args.help) {
  console.log(`usage: node bench/compare.ts [--sizes 10000,100000] [--latency-ms 10] [--window 20] [--tuned-concurrency 128]
                           [--seats 64] [--queue 64] [--peers defaults,tuned,kubectl,fleet]`);
  process.exit(0);
}
const sizes = args.sizes.split(',').map(Number);
const latencyMs = Number(args['latency-ms']);
const windowS = Number(args.window);
const peers = new Set(args.peers.split(','));
const repoRoot = new URL('..', import.meta.url).pathname;
const KUBECTL = tool('kubectl');

/** The chart's defaults that shape a run: time budget and the container's limits. */
interface Chart { timeBudget: string; memoryBytes: number; cpus: number; memory: string; cpu: string }
async function chartDefaults(): Promise<Chart> {
  const values = loadYaml<{ hook: { timeBudget: string }; resources: { limits: { memory: string; cpu: string } } }>(await readFile(join(repoRoot, 'helm-hook/values.yaml'), 'utf8'));
  const { memory, cpu } = values.resources.limits;
  const mem = /^(\d+)(Mi|Gi)$/.exec(memory);
  if (!mem) throw new Error(`helm-hook/values.yaml: resources.limits.memory ${memory}: expected Mi or Gi`);
  const cpus = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
  return { timeBudget: values.hook.timeBudget, memoryBytes: Number(mem[1]) * (mem[2] === 'Gi' ? 1024 ** 3 : 1024 ** 2), cpus, memory, cpu };
}

const chart = await chartDefaults();
// The job as its image runs it: `node dist/main.js`, built from this checkout (cached per source state).
const { image } = await buildImage();
const jobEntrypoint = image.entrypoint.at(-1)!;
/** The image's environment (the Dockerfile's ENV), as the container gets it. */
const jobEnv = { PATH: process.env.PATH ?? '', ...image.env };
const dir = await mkdtemp(join(tmpdir(), 'bench-compare-'));
const server = new ApiServer({ port: 0, continueTtlMs: 300_000, rbac: false, flowControl: { seatsPerUser: Number(args.seats), queueLength: Number(args.queue) } });
await server.listen();
const kubeconfigPath = join(dir, 'kubeconfig');
const kubeconfig = kubeconfigYaml(server.httpsUrl, server.certificate.certPem, server.auth.adminToken);
await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });
await installFleetCrds(kubeConfigFromYaml(kubeconfig));

const type = (group: string, version: string, resource: string) => {
  const t = server.catalogue.find(group, version, resource);
  if (!t) throw new Error(`test apiserver has no ${resource}.${group}`);
  return t;
};
const jobs = type('batch', 'v1', 'jobs');
const NAMESPACES = ['fleet-local', 'fleet-default', 'fleet-ns-2', 'fleet-ns-3'];
for (const ns of [...NAMESPACES, 'cattle-fleet-system']) server.store.insert(type('', 'v1', 'namespaces'), namespaceObject(ns) as KubeObject);
const repos: GitRepoRef[] = [];
for (const namespace of NAMESPACES) {
  for (let r = 0; r < 50; r++) {
    const stored = server.store.insert(type('fleet.cattle.io', 'v1alpha1', 'gitrepos'), gitRepoObject(namespace, `repo-${r}`) as unknown as KubeObject);
    repos.push({ namespace, name: `repo-${r}`, uid: String(stored.metadata.uid) });
  }
}

/** The same state for every peer: `count` old succeeded GitRepo Jobs and a running one per ten, which must stay. */
function seed(count: number): void {
  server.store.dropAll(jobs.storageKey);
  const twoHoursAgo = Date.now() - 2 * 3_600_000;
  for (let i = 0; i < count + Math.floor(count / 10); i++) {
    const repo = repos[i % repos.length]!;
    const succeeded = i < count;
    const job: V1Job = { ...gitJobObject({ gitRepo: repo, name: `${repo.name}-${i.toString(16).padStart(5, '0')}` }), status: jobStatus(succeeded ? 'succeeded' : 'running', new Date(twoHoursAgo - i * 1000)) };
    server.store.insert(jobs, job as unknown as KubeObject);
  }
}

// Latency on the work itself (lists and deletes of Jobs); marker and discovery requests are not slowed.
let deletesSeen = 0;
let firstDeleteAt: number | undefined;
let lastDeleteAt: number | undefined;
server.faults.add({ verb: 'list', resource: 'jobs', latencyMs });
server.faults.add({ verb: 'delete', resource: 'jobs', latencyMs, before: () => {
  deletesSeen++;
  firstDeleteAt ??= performance.now();
  lastDeleteAt = performance.now();
} });

interface Row {
  peer: string;
  jobs: number;
  deleted: number;
  seconds: number;
  /** Measured over a window of deleting, not the whole run. */
  windowed: boolean;
  /** From the start to the first delete, and the rate from the first delete to the last. */
  firstDeleteS: number;
  deletingRate: number;
  /** Mean time the server took per Job delete, from arrival to answer (the injected latency and its own work). */
  servedMs: number;
  /** The share of the run the server's (this process's) event loop was busy. */
  serverBusy: number;
  requests: number;
  connections: number;
  usage: Usage;
  note: string;
}

/** Runs one peer on a freshly seeded state; a windowed peer is stopped `windowS` after its first delete. */
async function measure(peer: string, size: number, command: string, argv: string[], options: { limits: Limits; windowed: boolean; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void }): Promise<Row> {
  seed(size);
  server.requests.reset();
  deletesSeen = 0;
  firstDeleteAt = undefined;
  lastDeleteAt = undefined;
  const connectionsBefore = server.connectionCount;
  const eluBefore = performance.eventLoopUtilization();
  const started = performance.now();
  // stdout goes to a file, as a container's does (the runtime's log file): a pipe read by this
  // process, which is also the API server, would slow the writer down with the server's load.
  const stdoutPath = join(dir, `${peer.replace(/\W+/g, '-')}-${size}.stdout`);
  const stdoutFd = openSync(stdoutPath, 'w');
  const run = new Confined(peer.replace(/\W+/g, '-'), command, argv, options.limits, { stdio: ['ignore', stdoutFd, 'pipe'], cwd: repoRoot, ...(options.env ? { env: options.env } : {}) });
  closeSync(stdoutFd);
  const stderr: string[] = [];
  createInterface({ input: run.child.stderr! }).on('line', (l) => stderr.push(l));
  let windowEnd: { at: number; deletes: number } | undefined;
  const watcher = setInterval(() => {
    if (!options.windowed || firstDeleteAt === undefined || windowEnd) return;
    if (performance.now() - firstDeleteAt >= windowS * 1000) {
      windowEnd = { at: performance.now(), deletes: deletesSeen };
      run.child.kill('SIGKILL');
    }
  }, 50);
  const usage = await run.exited;
  clearInterval(watcher);
  const ended = performance.now();
  const serverBusy = performance.eventLoopUtilization(eluBefore).utilization;
  const stdout = await readFile(stdoutPath, 'utf8');
  if (args['job-log']) appendFileSync(args['job-log'], stdout);
  for (const line of stdout.split('\n')) if (line) options.onLine?.(line);
  const answered = server.requests.list({ verb: 'delete', resource: 'jobs' }).filter((r) => r.status === 200);
  const deleted = answered.length;
  const servedMs = answered.reduce((sum, r) => sum + (r.servedMs ?? 0), 0) / Math.max(1, deleted);
  if (!windowEnd && usage.exitCode !== 0) console.error(`  ${peer} exited ${usage.exitCode ?? usage.signal}: ${stderr.slice(-3).join(' | ')}`);
  const seconds = windowEnd ? (windowEnd.at - firstDeleteAt!) / 1000 : (ended - started) / 1000;
  return {
    peer, jobs: size, deleted: windowEnd ? windowEnd.deletes : deleted, seconds, windowed: windowEnd !== undefined,
    firstDeleteS: firstDeleteAt === undefined ? NaN : (firstDeleteAt - started) / 1000,
    deletingRate: firstDeleteAt === undefined || lastDeleteAt === undefined ? NaN : (deletesSeen - 1) / ((lastDeleteAt - firstDeleteAt) / 1000),
    servedMs, serverBusy,
    requests: server.requests.count(), connections: server.connectionCount - connectionsBefore, usage, note: '',
  };
}

function jobArgs(runKey: string, extra: string[]): string[] {
  // The flags the chart's hook passes (helm-hook/templates/_helpers.tpl), OCI off: this is about Jobs.
  return [...args['job-node-flags'].split(' ').filter(Boolean), jobEntrypoint, `--kubeconfig=${kubeconfigPath}`, '--namespace=cattle-fleet-system', `--run-key=${runKey}`, '--force',
    `--time-budget=${chart.timeBudget}`, '--partial-ok', '--min-age=1h', '--keep-last=0', '--skip-oci', ...extra];
}

async function runJob(peer: string, size: number, extra: string[]): Promise<Row> {
  let client: { concurrency?: { settled: number; mean: number; peak: number; max: number }; throttled?: number } = {};
  let status = '';
  const row = await measure(peer, size, process.execPath, jobArgs(`${peer}-${size}`, extra), {
    limits: { memoryBytes: chart.memoryBytes, ...(args['cpu-limit'] ? { cpus: chart.cpus } : {}) }, windowed: false, env: jobEnv,
    onLine: (line) => {
      if (line.includes('"msg":"API client"')) client = JSON.parse(line);
      if (line.includes('"msg":"run finished"')) status = (JSON.parse(line) as { status: string }).status;
    },
  });
  const c = client.concurrency;
  // C/L: the limit the run settled on (its mean over the run's answers) over the latency, against
  // the rate while deleting (start-up and the first list are not in it). L twice: the injected
  // latency, and the time the server took per delete (the injected latency plus the test
  // server's own work, which shares this machine's two cores with the job).
  const ofCL = (l: number) => (c ? ((row.deletingRate / (c.mean / (l / 1000))) * 100).toFixed(0) : '?');
  row.note = `${status}; first delete after ${row.firstDeleteS.toFixed(1)} s, then ${row.deletingRate.toFixed(0)}/s; limit ${c?.mean ?? '?'} on average (last ${c?.settled ?? '?'}, peak ${c?.peak ?? '?'}, max ${c?.max ?? '?'}), ${client.throttled ?? 0} 429s; ${ofCL(latencyMs)}% of C/L at L = ${latencyMs} ms injected, ${ofCL(row.servedMs)}% at L = ${row.servedMs.toFixed(1)} ms served; server busy ${(row.serverBusy * 100).toFixed(0)}%`;
  return row;
}

const rows: Row[] = [];
console.log(`server: API test server, ${latencyMs} ms on Job lists and deletes, APF-like ${args.seats} seats + ${args.queue} queued per user; cgroups ${cgroupsAvailable() ? 'v1 (memory limit, cpuacct)' : 'unavailable: RSS from /proc, no limit'}`);
console.log(`chart defaults: --time-budget ${chart.timeBudget}, memory limit ${chart.memory}, cpu limit ${chart.cpu}`);
for (const size of sizes) {
  if (peers.has('defaults')) rows.push(await runJob('fleet-cleanup defaults', size, []));
  if (peers.has('tuned')) rows.push(await runJob(`fleet-cleanup --concurrency ${args['tuned-concurrency']}`, size, [`--concurrency=${args['tuned-concurrency']}`]));
  if (peers.has('kubectl')) {
    const row = await measure('kubectl', size, KUBECTL, ['--kubeconfig', kubeconfigPath, 'delete', 'jobs', '-A', '--field-selector', 'status.successful=1'], { limits: {}, windowed: true });
    row.note = 'sequential';
    rows.push(row);
  }
  if (peers.has('fleet')) {
    const row = await measure('fleet-equivalent', size, process.execPath, [join(repoRoot, 'bench/peers/fleet-equivalent.ts'), kubeconfigPath], { limits: {}, windowed: true });
    row.note = 'list all, sequential, 20 QPS';
    rows.push(row);
  }
  printTable(rows.filter((r) => r.jobs === size));
}

// The stops, on the biggest state: SIGTERM 3 s into deleting, and a 5 s time budget (counted
// from the moment the job holds its marker, when its budget starts).
const stopSize = Math.max(...sizes);
for (const stop of !args.stops ? [] : [{ name: 'SIGTERM 3 s into deleting', extra: [] as string[], signal: true }, { name: '--time-budget 5s', extra: ['--time-budget=5s'], signal: false }]) {
  seed(stopSize);
  server.requests.reset();
  deletesSeen = 0;
  firstDeleteAt = undefined;
  let status = '';
  let markerTakenAt: number | undefined;
  const run = new Confined('stop', process.execPath, jobArgs(`stop-${stop.signal}`, stop.extra), { memoryBytes: chart.memoryBytes, cpus: chart.cpus }, { stdio: ['ignore', 'pipe', 'ignore'], cwd: repoRoot, env: jobEnv });
  createInterface({ input: run.child.stdout! }).on('line', (line) => {
    if (line.includes('"marker":"taken"')) markerTakenAt ??= performance.now();
    if (line.includes('"msg":"run finished"')) status = (JSON.parse(line) as { status: string }).status;
  });
  let signalledAt: number | undefined;
  const watcher = setInterval(() => {
    if (stop.signal && signalledAt === undefined && firstDeleteAt !== undefined && performance.now() - firstDeleteAt >= 3_000) {
      signalledAt = performance.now();
      run.child.kill('SIGTERM');
    }
  }, 20);
  const usage = await run.exited;
  clearInterval(watcher);
  const exitedAt = performance.now();
  const from = stop.signal ? signalledAt : markerTakenAt !== undefined ? markerTakenAt + 5_000 : undefined;
  const deleted = server.requests.list({ verb: 'delete', resource: 'jobs' }).filter((r) => r.status === 200).length;
  console.log(`${stop.name}: exit ${usage.exitCode}, ${from === undefined ? '?' : ((exitedAt - from) / 1000).toFixed(2)} s after the ${stop.signal ? 'signal' : 'budget was spent'}, marker ${status || '(none)'}, ${deleted} deleted`);
}

await server.close();
await rm(dir, { recursive: true, force: true });

function printTable(table: Row[]): void {
  const header = ['peer', 'Jobs', 'deleted', 'deletes/s', 'time', 'requests/Job', 'connections', 'CPU ms/delete', 'peak RSS MiB', 'cgroup peak MiB', 'OOM', 'notes'];
  const lines = table.map((r) => [
    r.peer,
    String(r.jobs),
    String(r.deleted),
    `${(r.deleted / r.seconds).toFixed(0)}${r.windowed ? ` (over ${windowS} s)` : ''}`,
    r.windowed ? `≈ ${formatTime(r.jobs / (r.deleted / r.seconds))} projected` : formatTime(r.seconds),
    (r.requests / Math.max(1, r.deleted)).toFixed(3),
    String(r.connections),
    (r.usage.cpuMs / Math.max(1, r.deleted)).toFixed(2),
    r.usage.peakRssMiB.toFixed(0),
    r.usage.cgroupPeakMiB === undefined ? '-' : r.usage.cgroupPeakMiB.toFixed(0),
    String(r.usage.oomKills),
    r.note,
  ]);
  console.log(`\n| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
  for (const l of lines) console.log(`| ${l.join(' | ')} |`);
  console.log('');
}

function formatTime(seconds: number): string {
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}
