// Stage 2: the real kubectl (no --validate=false) against the test server, asserting what a
// user would see. Also starts main.ts as a child process, as `npm run test-apiserver` does.

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolchain } from '../toolchain/index.ts';
import { startApiServer, type TestApiServer } from './index.ts';

const TOOLS = toolchain(); // the pinned kubectl 1.32 (test/toolchain/); under CI=true a missing one throws
const KUBECTL = 'kubectl' in TOOLS ? TOOLS.kubectl : undefined;
const FIXTURE = fileURLToPath(new URL('../fixtures/fleet-crds.yaml', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
if ('missing' in TOOLS) console.warn(`skipping test/apiserver/kubectl.test.ts: ${TOOLS.missing}`);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let kubeconfig: string;

/** Runs kubectl asynchronously (the server lives in this process: a sync call would deadlock). */
function kubectl(args: string[], input?: string, config = kubeconfig): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(KUBECTL!, ['--kubeconfig', config, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const jobManifest = (ns: string, name: string, repo: { name: string; uid: string }) => `
apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
  namespace: ${ns}
  labels: {fleet.cattle.io/gitrepo-generation: "1"}
  annotations: {commit: abc123}
  ownerReferences:
  - {apiVersion: fleet.cattle.io/v1alpha1, kind: GitRepo, name: ${repo.name}, uid: ${repo.uid}, controller: true, blockOwnerDeletion: true}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: fleet, image: rancher/fleet:v0.12.0}]
`;

const podManifest = (ns: string, name: string, job: { name: string; uid: string }) => `
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  ownerReferences:
  - {apiVersion: batch/v1, kind: Job, name: ${job.name}, uid: ${job.uid}, controller: true, blockOwnerDeletion: true}
spec:
  containers: [{name: fleet, image: rancher/fleet:v0.12.0}]
`;

describe.skipIf(!KUBECTL)('kubectl against the test server', () => {
  let server: TestApiServer;
  let repo: { name: string; uid: string };
  const ns = 'fleet-local';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiserver-kubectl-'));
    server = await startApiServer();
    kubeconfig = join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfig);
    expect(await ok(['create', '-f', FIXTURE])).toBe(
      [
        'customresourcedefinition.apiextensions.k8s.io/gitrepos.fleet.cattle.io created',
        'customresourcedefinition.apiextensions.k8s.io/bundles.fleet.cattle.io created',
        'customresourcedefinition.apiextensions.k8s.io/bundledeployments.fleet.cattle.io created',
        '',
      ].join('\n'),
    );
    expect(await ok(['create', 'namespace', ns])).toBe(`namespace/${ns} created\n`);
    await ok(['create', '-f', '-'], `apiVersion: fleet.cattle.io/v1alpha1\nkind: GitRepo\nmetadata: {name: repo, namespace: ${ns}}\nspec: {repo: "https://github.com/rancher/fleet-examples"}\n`);
    repo = { name: 'repo', uid: await ok(['get', 'gitrepo', 'repo', '-n', ns, '-o', 'jsonpath={.metadata.uid}']) };
  });
  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A GitRepo Job with two Pods, created with kubectl; returns the Job's uid. */
  async function jobWithPods(name: string): Promise<void> {
    expect(await ok(['create', '-f', '-'], jobManifest(ns, name, repo))).toBe(`job.batch/${name} created\n`);
    const uid = await ok(['get', 'job', name, '-n', ns, '-o', 'jsonpath={.metadata.uid}']);
    for (const p of ['a', 'b']) await ok(['create', '-f', '-'], podManifest(ns, `${name}-${p}`, { name, uid }));
  }

  const podsOf = async (job: string) =>
    (await ok(['get', 'pods', '-n', ns, '-o', 'name'])).split('\n').filter((l) => l.startsWith(`pod/${job}-`));

  it('installs the Fleet CRDs and lists them', async () => {
    const out = await ok(['get', 'crd']);
    expect(out).toMatch(/^NAME\s+CREATED AT\n/);
    expect(out).toContain('gitrepos.fleet.cattle.io');
    expect(await ok(['get', 'gitrepos', '-A'])).toMatch(/NAMESPACE\s+NAME\s+AGE\nfleet-local\s+repo\s+\d+s\n/);
  });

  it('patches Job status through the subresource, then finds it by label and field selector', async () => {
    await jobWithPods('repo-11111');
    await jobWithPods('repo-22222');
    const patched = await ok(['patch', 'job', 'repo-11111', '-n', ns, '--subresource=status', '--type=merge', '-p', '{"status":{"succeeded":1,"conditions":[{"type":"Complete","status":"True"}]}}']);
    expect(patched).toBe('job.batch/repo-11111 patched\n');
    expect(await ok(['get', 'jobs', '-A', '-l', 'fleet.cattle.io/gitrepo-generation', '--field-selector', 'status.successful=1', '-o', 'name'])).toBe('job.batch/repo-11111\n');
    const table = await ok(['get', 'jobs', '-n', ns]);
    expect(table).toMatch(/^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\n/);
    expect(table).toMatch(/repo-11111\s+Complete\s+1\/1/);
    expect(table).toMatch(/repo-22222\s+Running\s+0\/1/);
    const waited = await kubectl(['wait', '--for=condition=Complete', 'job/repo-11111', '-n', ns, '--timeout=10s']);
    expect(waited.stdout).toBe('job.batch/repo-11111 condition met\n');
  });

  it('reports an unsupported field selector the way kube does', async () => {
    const r = await kubectl(['get', 'jobs', '-A', '--field-selector', 'spec.foo=1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('field label "spec.foo" not supported for batchv1.Job');
  });

  it('delete --cascade=background removes the Job and its Pods', async () => {
    await jobWithPods('repo-bg');
    expect(await podsOf('repo-bg')).toHaveLength(2);
    expect(await ok(['delete', 'job', 'repo-bg', '-n', ns, '--cascade=background'])).toBe('job.batch "repo-bg" deleted\n');
    expect(await podsOf('repo-bg')).toEqual([]);
    const gone = await kubectl(['get', 'job', 'repo-bg', '-n', ns]);
    expect(gone.stderr).toContain('Error from server (NotFound): jobs.batch "repo-bg" not found');
  });

  it('delete --cascade=foreground removes the Pods, then the Job', async () => {
    await jobWithPods('repo-fg');
    expect(await ok(['delete', 'job', 'repo-fg', '-n', ns, '--cascade=foreground'])).toBe('job.batch "repo-fg" deleted\n');
    expect(await podsOf('repo-fg')).toEqual([]);
    expect((await kubectl(['get', 'job', 'repo-fg', '-n', ns])).code).not.toBe(0);
  });

  it('delete --cascade=orphan keeps the Pods, without their owner', async () => {
    await jobWithPods('repo-or');
    await ok(['delete', 'job', 'repo-or', '-n', ns, '--cascade=orphan']);
    expect(await podsOf('repo-or')).toEqual(['pod/repo-or-a', 'pod/repo-or-b']);
    expect(await ok(['get', 'pod', 'repo-or-a', '-n', ns, '-o', 'jsonpath={.metadata.ownerReferences}'])).toBe('');
  });

  it('creates ConfigMaps and typed Secrets with kubectl create, and reads them back', async () => {
    await ok(['create', 'configmap', 'fleet-cleanup-marker', '-n', ns, '--from-literal=status=done']);
    expect(await ok(['get', 'configmap', 'fleet-cleanup-marker', '-n', ns, '-o', 'jsonpath={.data.status}'])).toBe('done');
    const type = 'fleet.cattle.io/bundle-oci-storage/v1alpha1';
    expect(await ok(['create', 'secret', 'generic', 'ocistorage', '-n', ns, `--type=${type}`, '--from-literal=reference=127.0.0.1:5000/fleet'])).toBe('secret/ocistorage created\n');
    expect(await ok(['get', 'secret', 'ocistorage', '-n', ns, '-o', 'jsonpath={.type} {.data.reference}'])).toBe(`${type} ${Buffer.from('127.0.0.1:5000/fleet').toString('base64')}`);
    expect(await ok(['get', 'secrets', '-A', '--field-selector', `type=${type}`, '-o', 'name'])).toBe('secret/ocistorage\n');
  });

  it('rejects unknown fields (kubectl sends fieldValidation=Strict)', async () => {
    const r = await kubectl(['create', '-f', '-'], `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: ${ns}}\ndatta: {a: b}\n`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown field "datta"');
  });

  it('delete --dry-run=server answers kube\'s dry-run Status and leaves the Job (dryRun in the DeleteOptions body)', async () => {
    await jobWithPods('repo-dry');
    expect(await ok(['delete', 'job', 'repo-dry', '-n', ns, '--dry-run=server'])).toBe('job.batch "repo-dry" deleted (server dry run)\n');
    expect(await ok(['get', 'job', 'repo-dry', '-n', ns, '-o', 'name'])).toBe('job.batch/repo-dry\n');
    expect(await podsOf('repo-dry')).toHaveLength(2);
  });

  it('follows a continue token whose page is empty (a selective chunked list, as etcd pages it)', async () => {
    const list = 'chunked-list';
    await ok(['create', 'namespace', list]);
    await ok(['create', 'configmap', 'a', '-n', list]);
    for (const n of ['b', 'c']) {
      await ok(['create', 'configmap', n, '-n', list]);
      await ok(['label', 'configmap', n, '-n', list, 'skip=yes']);
    }
    server.requests.reset();
    expect(await ok(['get', 'configmaps', '-n', list, '-l', '!skip', '--chunk-size=1', '-o', 'name'])).toBe('configmap/a\n');
    const pages = server.requests.list({ verb: 'list', resource: 'configmaps', namespace: list });
    expect(pages.map((r) => r.query.has('continue'))).toEqual([false, true]);
  });

  it('retries APF\'s plain-text 429 after its Retry-After, like client-go does against kube', async () => {
    const fault = server.faults.add({ verb: 'list', resource: 'configmaps', namespace: ns, status: 429, retryAfterSeconds: 1, times: 1 });
    expect(await ok(['get', 'configmaps', '-n', ns, '-o', 'name'])).toMatch(/^configmap\//);
    expect(fault.hits).toBe(1);
  });

  it('shows the strict refusal of dryRun=false as kube\'s Invalid, and the server records it as a contract violation', async () => {
    await ok(['create', 'configmap', 'strict-marker', '-n', ns, '--from-literal=status=running']);
    const cm = JSON.parse(await ok(['get', 'configmap', 'strict-marker', '-n', ns, '-o', 'json'])) as { metadata: object };
    const file = join(dir, 'marker.json');
    await writeFile(file, JSON.stringify({ ...cm, data: { status: 'completed' } }));
    const path = `/api/v1/namespaces/${ns}/configmaps/strict-marker?dryRun=false`;
    const r = await kubectl(['replace', '--raw', path, '-f', file]);
    expect(r.code).not.toBe(0);
    // kubectl words an Invalid Status from its details (kind UpdateOptions, name "", causes).
    expect(r.stderr).toBe('The UpdateOptions "" is invalid: dryRun: Unsupported value: []string{"false"}: supported values: "All"\n');
    expect(server.contract.take().map((v) => v.request)).toEqual([`PUT ${path}`]);
    expect(await ok(['get', 'configmap', 'strict-marker', '-n', ns, '-o', 'jsonpath={.data.status}'])).toBe('running');
  });

  it('runs standalone (main.ts): prints ready, serves kubectl, stops on SIGTERM', async () => {
    const config = join(dir, 'standalone-kubeconfig');
    const child = spawn(process.execPath, [MAIN, '--kubeconfig', config, '--continue-ttl', '2m'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`main.ts exited (${code}) before ready: ${out}`)));
    });
    expect(out).toMatch(/ready at http:\/\/127\.0\.0\.1:\d+/);
    const ns = await kubectl(['get', 'ns', '-o', 'name'], undefined, config);
    expect(ns.stdout).toContain('namespace/default\n');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
