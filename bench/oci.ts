// Benchmark (not a test): the OCI phase against a real docker-registry and the API test server.
// Seeds in-use and stale artifacts (each stale one with Fleet's secret and two clones) and
// orphans, runs the job once as its image runs it (`node dist/main.js`, its own process, the
// chart's defaults, `--skip-gitjobs`), and prints artifacts/s and requests per deleted artifact.
// Then two peers, each on as many fresh stale artifacts: a floor (bench/peers/oci-floor.ts: the
// registry and Secret requests of each artifact, without the in-use checks), and a sequential
// loop of curl digest DELETEs (the registry part of a hand-written cleanup); and the ratios.
// `node bench/oci.ts --help`. Needs docker-registry, skopeo and curl; says so and exits 0 without.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pLimit from 'p-limit';
import { findTool } from '../test/registry/tools.ts';
import { BUNDLE_NS, gcEnv, type ArtifactSpec } from '../test/oci/gc-env.ts';
import { buildImage } from '../test/jobrunner/image.ts';

const { values: args } = parseArgs({
  options: {
    stale: { type: 'string', default: '300' },
    orphans: { type: 'string', default: '0' },
    'in-use': { type: 'string', default: '40' },
    'page-size': { type: 'string', default: '500' },
    /** A file that gets the job's stdout (its JSON log). */
    'job-log': { type: 'string', default: '' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/oci.ts [--stale 300] [--orphans 0] [--in-use 40] [--page-size 500]
Seeds the artifacts, deletes the stale ones and the orphans in one run of the job (OCI phase only).`);
  process.exit(0);
}
const missing = ['docker-registry', 'skopeo', 'curl'].filter((t) => !findTool(t));
if (missing.length > 0) {
  console.log(`bench/oci.ts skipped: ${missing.join(', ')} not installed`);
  process.exit(0);
}

const n = (v: string | undefined) => Number(v);
/** CPU seconds from /proc/<pid>/stat: the process's own (utime+stime), or its waited-for children's (cutime+cstime). */
const cpuSeconds = (pid: number | 'self', which: 'own' | 'children'): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  const [a, b] = which === 'own' ? [11, 12] : [13, 14];
  return (Number(fields[a]) + Number(fields[b])) / 100;
};
const exec = promisify(execFile);
const env = await gcEnv();
const dir = await mkdtemp(join(tmpdir(), 'bench-oci-'));
try {
  const specs: ArtifactSpec[] = [
    ...Array.from({ length: n(args['in-use']) }, (): ArtifactSpec => ({ use: 'bundle' })),
    ...Array.from({ length: n(args.stale) }, (): ArtifactSpec => ({ use: 'none' })),
    ...Array.from({ length: n(args.orphans) }, (): ArtifactSpec => ({ use: 'none', secrets: false })),
  ];
  const seedLimit = pLimit(4);
  const seedStart = performance.now();
  await Promise.all(specs.map((s) => seedLimit(() => env.artifact(s))));
  console.log(`seeded ${specs.length} artifacts in ${((performance.now() - seedStart) / 1000).toFixed(1)}s`);
  const { image } = await buildImage();
  const kubeconfig = join(dir, 'kubeconfig');
  await env.server.writeKubeconfig(kubeconfig);
  env.server.requests.reset();
  const registryBefore = (await env.registryRequests()).length;

  const registryPid = env.registry.pid!;
  const connectionsBefore = env.server.connections();
  const cpuBefore = { job: cpuSeconds('self', 'children'), registry: cpuSeconds(registryPid, 'own'), server: process.cpuUsage() };
  const started = performance.now();
  // More stale than in-use artifacts: the mass-delete brake is let through on purpose here.
  const job = await exec(image.entrypoint[0]!, [...image.entrypoint.slice(1), `--kubeconfig=${kubeconfig}`, `--namespace=${BUNDLE_NS}`, '--run-key=bench-oci', '--force',
    '--skip-gitjobs', '--allow-mass-delete', `--page-size=${args['page-size']}`], { maxBuffer: 256 * 1024 * 1024, env: { PATH: process.env.PATH ?? '', ...image.env } })
    .catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = process.cpuUsage(cpuBefore.server);
  const cpu = { job: cpuSeconds('self', 'children') - cpuBefore.job, registry: cpuSeconds(registryPid, 'own') - cpuBefore.registry, server: (serverCpu.user + serverCpu.system) / 1e6 };
  if (args['job-log']) await writeFile(args['job-log'], job.stdout);

  const lines = job.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; time: string; audit?: boolean; status: string; cause?: string; summary: { ociArtifacts?: { deleted: number }; ociSecrets?: { deleted: number } } });
  const finished = lines.find((l) => l.msg === 'run finished');
  // The phase alone: from its start to its last audit line (the process's start-up and marker excluded).
  const phaseStart = lines.find((l) => l.msg === 'phase oci starting')?.time;
  const lastAudit = lines.filter((l) => l.audit === true).at(-1)?.time;
  const phaseSeconds = phaseStart && lastAudit ? (Date.parse(lastAudit) - Date.parse(phaseStart)) / 1000 : NaN;
  if (!finished) throw new Error(`the job did not finish: ${job.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const registryRequests = (await env.registryRequests()).length - registryBefore;
  const deleted = finished.summary.ociArtifacts?.deleted ?? 0;
  const kubeRequests = env.server.requests.count();
  console.log(`outcome ${finished.status}${finished.cause ? ` (${finished.cause})` : ''}`);
  console.log(`deleted ${deleted} artifacts and ${finished.summary.ociSecrets?.deleted ?? 0} secrets in ${seconds.toFixed(2)}s, the process's start included (${(deleted / seconds).toFixed(1)} artifacts/s); the phase alone ${phaseSeconds.toFixed(2)}s (${(deleted / phaseSeconds).toFixed(1)} artifacts/s)`);
  const phaseDone = lines.find((l) => l.msg === 'oci storage phase done') as { registryConnections?: number } | undefined;
  console.log(`registry requests ${registryRequests} (${(registryRequests / Math.max(deleted, 1)).toFixed(2)} per deleted artifact, catalog and auth included) on ${phaseDone?.registryConnections ?? '?'} connections (the job's count)`);
  // Where the time went: this machine's cores are shared by the job, the registry and the API test server (this process).
  console.log(`CPU during the run: job ${cpu.job.toFixed(2)} s, docker-registry ${cpu.registry.toFixed(2)} s, API test server (this bench process) ${cpu.server.toFixed(2)} s (${((cpu.job + cpu.registry + cpu.server) / seconds).toFixed(2)} cores of the run's ${seconds.toFixed(2)} s)`);
  console.log(`kube requests ${kubeRequests} (${(kubeRequests / Math.max(deleted, 1)).toFixed(2)} per deleted artifact, the marker, lists and secret deletes included) on ${env.server.connections() - connectionsBefore} connections`);

  // The floor: as many fresh stale artifacts with their Secrets, deleted with their registry and
  // Secret requests only, no in-use checks (bench/peers/oci-floor.ts), in its own process.
  const floorSet = await Promise.all(Array.from({ length: n(args.stale) }, () => seedLimit(() => env.artifact({ use: 'none' }))));
  const floorFile = join(dir, 'floor.json');
  await writeFile(floorFile, JSON.stringify(floorSet.map((a) => ({ repository: a.repository, secrets: a.secrets }))));
  const floorRegistryBefore = (await env.registryRequests()).length;
  const floorKubeBefore = env.server.requests.count();
  const floorCpuBefore = { job: cpuSeconds('self', 'children'), registry: cpuSeconds(registryPid, 'own'), server: process.cpuUsage() };
  const floorStart = performance.now();
  const floorOut = await exec(process.execPath, [join(import.meta.dirname, 'peers', 'oci-floor.ts'), kubeconfig, `${env.registry.certDir ? 'https' : 'http'}://${env.registry.host}`, floorFile],
    { env: { PATH: process.env.PATH ?? '', ...image.env } });
  const floorSeconds = (performance.now() - floorStart) / 1000;
  const floorServerCpu = process.cpuUsage(floorCpuBefore.server);
  const floor = JSON.parse(floorOut.stdout.trim().split('\n').at(-1)!) as { deleted: number; seconds: number };
  const floorRate = floor.deleted / floorSeconds;
  const floorKube = env.server.requests.count() - floorKubeBefore;
  // Less the marker request that reading the registry's log sends.
  const floorRegistry = (await env.registryRequests()).length - floorRegistryBefore - 1;
  console.log(`floor (registry and Secret requests only, no in-use checks): deleted ${floor.deleted} artifacts and their secrets in ${floorSeconds.toFixed(2)}s, the process's start included (${floorRate.toFixed(1)} artifacts/s; ${(floor.deleted / floor.seconds).toFixed(1)}/s after its start); CPU: peer ${(cpuSeconds('self', 'children') - floorCpuBefore.job).toFixed(2)} s, docker-registry ${(cpuSeconds(registryPid, 'own') - floorCpuBefore.registry).toFixed(2)} s, API test server ${((floorServerCpu.user + floorServerCpu.system) / 1e6).toFixed(2)} s; ${(floorRegistry / Math.max(floor.deleted, 1)).toFixed(2)} registry and ${(floorKube / Math.max(floor.deleted, 1)).toFixed(2)} kube requests per artifact`);

  // The peer: the same number of stale artifacts, deleted by digest one after the other with curl.
  const fresh = await Promise.all(Array.from({ length: n(args.stale) }, () => seedLimit(() => env.artifact({ use: 'none', secrets: false }))));
  const scheme = env.registry.certDir ? 'https' : 'http';
  const curlStart = performance.now();
  let curlDeleted = 0;
  for (const a of fresh) {
    const { stdout } = await exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', ...(env.registry.certDir ? ['--cacert', join(env.registry.certDir, 'ca.crt')] : []),
      `${scheme}://${env.registry.host}/v2/${a.repository}/manifests/${a.digest}`]);
    if (stdout === '202') curlDeleted++;
  }
  const curlSeconds = (performance.now() - curlStart) / 1000;
  const curlRate = curlDeleted / curlSeconds;
  console.log(`curl loop: deleted ${curlDeleted} of ${fresh.length} manifests by digest in ${curlSeconds.toFixed(2)}s (${curlRate.toFixed(1)} artifacts/s, registry only: no secrets, no in-use check)`);
  console.log(`ratio: fleet-cleanup ${(deleted / seconds / curlRate).toFixed(2)}x the curl loop's artifacts/s (the phase alone: ${(deleted / phaseSeconds / curlRate).toFixed(2)}x)`);
  // The floor's start is slower (unbundled TypeScript): compare the starts included, and the work alone.
  console.log(`ratio: the floor ${(floorRate / curlRate).toFixed(2)}x the curl loop's artifacts/s (after its start: ${(floor.deleted / floor.seconds / curlRate).toFixed(2)}x); fleet-cleanup ${(deleted / seconds / floorRate).toFixed(2)}x the floor's (the phase alone against the floor after its start: ${(deleted / phaseSeconds / (floor.deleted / floor.seconds)).toFixed(2)}x)`);
} finally {
  await env.close();
  await rm(dir, { recursive: true, force: true });
}
