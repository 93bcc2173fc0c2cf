// Benchmark (not a test): GitRepo Job cleanup against the API test server, run in a child
// process so the memory numbers are the job's own. Prints Jobs/s, requests per deleted Job,
// peak RSS and heap growth during the run. `node bench/gitjobs.ts --help`.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pLimit from 'p-limit';
import { cleanupGitJobs } from '../src/gitjobs/cleanup.ts';
import { KubeAccess } from '../src/kube/access.ts';
import { createLogger } from '../src/log.ts';
import { FleetSeeder, installFleetCrds, type GitRepoRef } from '../test/fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../test/fixtures/kube.ts';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    'page-size': { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '8' },
    qps: { type: 'string', default: '100000' },
    'keep-last': { type: 'string', default: '0' },
    namespaces: { type: 'string', default: '4' },
    'repos-per-namespace': { type: 'string', default: '5' },
    pods: { type: 'boolean', default: false },
    /** Internal: seed the cluster of this kubeconfig and exit (run in a child, so seeding's memory is not the job's). */
    'seed-into': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/gitjobs.ts [--jobs 2000] [--page-size 500] [--concurrency 8] [--qps 100000]
                            [--keep-last 0] [--namespaces 4] [--repos-per-namespace 5] [--pods]
Seeds --jobs old succeeded GitRepo Jobs (plus 1 running Job per 10, which must survive) and deletes them.`);
  process.exit(0);
}
const num = (flag: keyof typeof args) => {
  const n = Number(args[flag]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag}: not a number: ${String(args[flag])}`);
  return n;
};
const jobCount = num('jobs');
const pageSize = num('page-size');

/** The API test server in its own process; resolves once it printed "ready". */
async function startServer(kubeconfigPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [new URL('../test/apiserver/main.ts', import.meta.url).pathname, '--kubeconfig', kubeconfigPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.includes('ready')) return child;
  }
  throw new Error('test apiserver exited before it was ready');
}

async function seed(seeder: FleetSeeder): Promise<number> {
  const repos: GitRepoRef[] = [];
  for (let n = 0; n < num('namespaces'); n++) {
    const namespace = n === 0 ? 'fleet-local' : n === 1 ? 'fleet-default' : `fleet-ns-${n}`;
    await seeder.namespace(namespace);
    for (let r = 0; r < num('repos-per-namespace'); r++) repos.push(await seeder.gitRepo(namespace, `repo-${r}`));
  }
  const limit = pLimit(16);
  const withPod = args.pods;
  const twoHoursAgo = Date.now() - 2 * 3_600_000;
  const eligible = Array.from({ length: jobCount }, (_, i) =>
    limit(() => seeder.gitJob(repos[i % repos.length]!, { state: 'succeeded', finishedAt: new Date(twoHoursAgo - i * 1000), withPod })),
  );
  const running = Array.from({ length: Math.floor(jobCount / 10) }, (_, i) => limit(() => seeder.gitJob(repos[i % repos.length]!, { state: 'running', withPod })));
  await Promise.all([...eligible, ...running]);
  return running.length;
}

if (args['seed-into']) {
  const kubeConfig = kubeConfigFromYaml(await readFile(args['seed-into'], 'utf8'));
  await installFleetCrds(kubeConfig);
  const running = await seed(new FleetSeeder(kubeConfig));
  console.log(`seeded ${jobCount} eligible + ${running} running Jobs${args.pods ? ' with Pods' : ''}`);
  process.exit(0);
}

/** Seeding in a child process with the same flags. */
async function seedInChild(kubeconfigPath: string): Promise<void> {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, ...process.argv.slice(2), '--seed-into', kubeconfigPath], { stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`seeding failed (exit ${code})`);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

const dir = await mkdtemp(join(tmpdir(), 'bench-gitjobs-'));
const server = await startServer(join(dir, 'kubeconfig'));
try {
  const seedStart = performance.now();
  await seedInChild(join(dir, 'kubeconfig'));
  console.log(`  (seeding took ${((performance.now() - seedStart) / 1000).toFixed(1)}s)`);
  const kubeConfig = kubeConfigFromYaml(await readFile(join(dir, 'kubeconfig'), 'utf8'));

  // Audit lines go nowhere (their cost is still paid): the numbers are the job's, not a terminal's.
  const logger = createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) });
  const access = new KubeAccess(kubeConfig, {
    qps: num('qps'), burst: Math.max(1, Math.min(num('qps'), 1000)), concurrency: num('concurrency'), retries: 5, requestTimeoutMs: 30_000, logger,
  });
  gc();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 10);

  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  const result = await cleanupGitJobs(
    { access, logger, dryRun: false, budget: new AbortController().signal, now: () => new Date() },
    { namespaces: 'all', minAgeMs: 3_600_000, keepLast: num('keep-last'), deleteFailed: false, pageSize },
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);

  gc();
  const retained = process.memoryUsage().heapUsed - before.heapUsed;
  const deleted = result.tallies.jobs?.deleted ?? 0;
  console.log(`outcome ${result.outcome}${result.cause ? ` (${result.cause})` : ''}: deleted ${deleted}, kept ${result.tallies.jobs?.kept}`);
  console.log(`${(deleted / seconds).toFixed(0)} Jobs/s (${seconds.toFixed(2)}s, page size ${pageSize}, concurrency ${num('concurrency')}, qps ${num('qps')})`);
  console.log(`${(access.requestCount / Math.max(1, deleted)).toFixed(3)} requests per deleted Job (${access.requestCount} requests)`);
  console.log(`job CPU ${((cpu.user + cpu.system) / 1000 / Math.max(1, deleted)).toFixed(2)} ms per deleted Job (the API test server's own CPU not included)`);
  console.log(`peak RSS ${mib(peakRss)} MiB (start ${mib(before.rss)} MiB), peak heap growth ${mib(peakHeap - before.heapUsed)} MiB, retained after GC ${mib(retained)} MiB`);
  if (result.outcome !== 'completed' || deleted !== jobCount) process.exitCode = 1;
} finally {
  server.kill('SIGTERM');
  await once(server, 'exit');
  await rm(dir, { recursive: true, force: true });
}
