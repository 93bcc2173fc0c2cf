// Benchmark (not a test): the OCI phase against a real docker-registry and the API test server.
// Seeds in-use and stale artifacts (each stale one with Fleet's secret and two clones) and
// orphans, runs the phase once, and prints artifacts/s and requests per deleted artifact; then,
// as the peer, the same number of fresh stale artifacts deleted by a sequential loop of curl
// digest DELETEs (the registry part of a hand-written cleanup), and the ratio of the two.
// `node bench/oci.ts --help`. Needs docker-registry, skopeo and curl; says so and exits 0 without.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pLimit from 'p-limit';
import { findTool } from '../test/registry/tools.ts';
import { gcEnv, type ArtifactSpec } from '../test/oci/gc-env.ts';

const { values: args } = parseArgs({
  options: {
    stale: { type: 'string', default: '300' },
    orphans: { type: 'string', default: '0' },
    'in-use': { type: 'string', default: '40' },
    concurrency: { type: 'string', default: '4' },
    'page-size': { type: 'string', default: '500' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/oci.ts [--stale 300] [--orphans 0] [--in-use 40] [--concurrency 4] [--page-size 500]
Seeds the artifacts, deletes the stale ones and the orphans in one run of the OCI phase.`);
  process.exit(0);
}
const missing = ['docker-registry', 'skopeo', 'curl'].filter((t) => !findTool(t));
if (missing.length > 0) {
  console.log(`bench/oci.ts skipped: ${missing.join(', ')} not installed`);
  process.exit(0);
}

const n = (v: string | undefined) => Number(v);
const exec = promisify(execFile);
// The API client as the job runs it by default: up to 32 in flight (adaptive), no rate ceiling.
const env = await gcEnv({ client: { concurrency: 32, qps: 0, retries: 5, requestTimeoutMs: 30_000 } });
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
  await env.mark();
  const kubeBefore = env.kube.access.requestCount;

  const started = performance.now();
  // More stale than in-use artifacts: the mass-delete brake is let through on purpose here.
  const result = await env.run({ registryConcurrency: n(args.concurrency), pageSize: n(args['page-size']), registryRetries: 3, allowMassDelete: true });
  const seconds = (performance.now() - started) / 1000;

  const registryRequests = (await env.registryRequests()).length;
  const deleted = result.tallies.ociArtifacts?.deleted ?? 0;
  const kubeRequests = env.kube.access.requestCount - kubeBefore;
  console.log(`outcome ${result.outcome}${result.cause ? ` (${result.cause})` : ''}`);
  console.log(`deleted ${deleted} artifacts and ${result.tallies.ociSecrets?.deleted ?? 0} secrets in ${seconds.toFixed(2)}s (${(deleted / seconds).toFixed(1)} artifacts/s)`);
  console.log(`registry requests ${registryRequests} (${(registryRequests / Math.max(deleted, 1)).toFixed(2)} per deleted artifact, catalog and auth included)`);
  console.log(`kube requests ${kubeRequests} (${(kubeRequests / Math.max(deleted, 1)).toFixed(2)} per deleted artifact, lists and secret deletes included)`);

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
  console.log(`ratio: fleet-cleanup ${(deleted / seconds / curlRate).toFixed(2)}x the curl loop's artifacts/s`);
} finally {
  await env.close();
}
