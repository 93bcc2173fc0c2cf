// One test world for the OCI phase: the Kubernetes API test server with Fleet's CRDs, a real
// `docker-registry`, an `ocistorage` connection secret, and helpers that create artifacts the
// way Fleet leaves them (in use, stale with secrets, orphaned) and check what is left.
import { expect } from 'vitest';
import { collectOciGarbage, type OciOptions } from '../../src/oci/gc.ts';
import type { KubeAccessOptions } from '../../src/kube/access.ts';
import type { PhaseResult, RunContext } from '../../src/phase.ts';
import { startApiServer, type StartOptions, type TestApiServer } from '../apiserver/index.ts';
import { installFleetCrds } from '../fixtures/fleet-objects.ts';
import { runContext, testKube, type TestKube } from '../fixtures/kube.ts';
import { clusterNamespace, deploymentId, OciSeeder, type SeededSecret } from '../fixtures/oci-objects.ts';
import { pushFleetArtifact } from '../registry/push.ts';
import { rawGet } from '../registry/raw-http.ts';
import { startRegistry, type RegistryOptions, type TestRegistry } from '../registry/registry.ts';
import { startRegistryProxy, type RegistryProxy } from '../registry/proxy.ts';

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;
export const ago = (ms: number) => new Date(Date.now() - ms);

export const BUNDLE_NS = 'fleet-default';
export const CLUSTER_NS = [clusterNamespace('prod-1'), clusterNamespace('prod-2')];
export const PREFIX = 'fleet/bundles';

/** Small pages so that every list really pages; short registry retries so failures are quick. */
export const DEFAULT_OPTIONS: OciOptions = {
  minAgeMs: HOUR,
  allowMassDelete: false,
  massDeleteRatio: 0.5,
  massDeleteMin: 5,
  registryTimeoutMs: 5_000,
  pageSize: 2,
  registryRetries: 1,
  registryBackoffBaseMs: 10,
};

export type Use = 'bundle' | 'deployment' | 'staged' | 'none';

export interface ArtifactSpec {
  use?: Use;
  /** The created annotation; null: none. Default: two days ago. */
  created?: Date | null;
  /** Fleet's per-bundle secret and clones; default true for `none` too (a stale Bundle record). */
  secrets?: boolean;
  /** Push under another prefix than the connection's. */
  prefix?: string;
  /** Repository name instead of a contents id. */
  name?: string;
}

export interface Artifact {
  contentsId: string;
  digest: string;
  repository: string;
  secrets: SeededSecret[];
}

export interface GcEnv {
  server: TestApiServer;
  kube: TestKube;
  seeder: OciSeeder;
  registry: TestRegistry;
  /** With `proxy: true`: what the secrets' reference names instead of the registry. */
  proxy: RegistryProxy | undefined;
  artifact(spec?: ArtifactSpec): Promise<Artifact>;
  /** `count` artifacts of one spec, pushed one after the other. */
  artifacts(count: number, spec?: ArtifactSpec): Promise<Artifact[]>;
  run(options?: Partial<OciOptions>, ctx?: Partial<Omit<RunContext, 'access' | 'logger'>>): Promise<PhaseResult>;
  /** HTTP status of `GET <repository>/manifests/latest`: 200 present, 404 deleted. */
  status(a: Artifact): Promise<number>;
  secretsLeft(...artifacts: Artifact[]): Promise<string[]>;
  /** Registry access-log lines since the env started (or since `mark()`). */
  registryRequests(): Promise<string[]>;
  mark(): Promise<void>;
  close(): Promise<void>;
}

export interface EnvOptions {
  registry?: RegistryOptions;
  api?: StartOptions;
  /** Install Fleet's CRDs; default true. */
  crds?: boolean;
  /** Create the `ocistorage` connection secret; default true. */
  connectionSecret?: boolean;
  /** The secrets reach the registry through a plain-http proxy (`env.proxy`) that tests can make hostile. */
  proxy?: boolean;
  /** The phase's API client (e.g. an instant clock for retry storms). */
  client?: Partial<KubeAccessOptions>;
}

let counter = 0;

export async function gcEnv(options: EnvOptions = {}): Promise<GcEnv> {
  const server = await startApiServer(options.api);
  let registry: TestRegistry | undefined;
  try {
    const kube = testKube(server.kubeconfig(), options.client);
    if (options.crds !== false) await installFleetCrds(kube.kubeConfig);
    const seeder = new OciSeeder(kube.kubeConfig);
    for (const ns of [BUNDLE_NS, ...CLUSTER_NS]) await seeder.namespace(ns);
    const reg = await startRegistry(options.registry);
    registry = reg;
    const proxy = options.proxy ? await startRegistryProxy(() => reg.host) : undefined;
    const direct = reg.connection(PREFIX);
    const conn = proxy ? { ...direct, reference: `${proxy.host}/${PREFIX}`, host: proxy.host, basicHTTP: true } : direct;
    if (options.connectionSecret !== false) await seeder.connectionSecret(BUNDLE_NS, conn);
    let since = 0;

    const env: GcEnv = {
      server,
      kube,
      seeder,
      registry: reg,
      proxy,
      async artifact(spec = {}) {
        const use = spec.use ?? 'none';
        const n = ++counter;
        const prefix = spec.prefix ?? PREFIX;
        const pushed = await pushFleetArtifact(
          { registry: reg, prefix },
          { created: spec.created === undefined ? ago(2 * DAY) : spec.created, ...(spec.name ? { contentsId: spec.name } : {}) },
        );
        const id = pushed.contentsId;
        const bundleName = `app-${n}`;
        const bundle = use === 'bundle' ? await seeder.bundle(BUNDLE_NS, bundleName, id) : undefined;
        if (use === 'deployment') await seeder.bundleDeployment(CLUSTER_NS[0]!, bundleName, { deploymentID: deploymentId(id) });
        if (use === 'staged') {
          // Rolled forward: the deployed id names something else, only the staged one names this.
          await seeder.bundleDeployment(CLUSTER_NS[0]!, bundleName, { deploymentID: deploymentId(`s-${'0'.repeat(61)}`), stagedDeploymentID: deploymentId(id) });
        }
        const secrets = spec.secrets === false ? [] : await seeder.artifactSecrets(id, conn, { bundle: BUNDLE_NS, clusters: CLUSTER_NS }, bundle);
        return { contentsId: id, digest: pushed.digest, repository: prefix ? `${prefix}/${id}` : id, secrets };
      },
      async artifacts(count, spec) {
        const out: Artifact[] = [];
        for (let i = 0; i < count; i++) out.push(await env.artifact(spec));
        return out;
      },
      run: (opts = {}, ctx = {}) => collectOciGarbage(runContext(kube, ctx), { ...DEFAULT_OPTIONS, ...opts }),
      async status(a) {
        return (await rawGet(reg, `/v2/${a.repository}/manifests/latest`, 'application/vnd.oci.image.manifest.v1+json')).status;
      },
      secretsLeft: (...artifacts) => seeder.existing(artifacts.flatMap((a) => a.secrets)),
      registryRequests: async () => (await reg.requests()).slice(since),
      async mark() {
        since = (await reg.requests()).length;
      },
      async close() {
        await proxy?.close();
        await reg.dispose();
        await server.close();
      },
    };
    return env;
  } catch (err) {
    await registry?.dispose();
    await server.close();
    throw err;
  }
}

/** Every credential the test world holds must be absent from the captured log, raw or base64. */
export function credentialsIn(env: GcEnv): string[] {
  const text = env.kube.text();
  const secrets = [env.registry.password, env.registry.username === undefined ? undefined : `${env.registry.username}:${env.registry.password}`]
    .filter((s): s is string => !!s)
    .flatMap((s) => [s, Buffer.from(s).toString('base64')])
    .concat(env.registry.tokenServer?.issued ?? []);
  const found = secrets.filter((s) => text.includes(s));
  if (/Bearer [A-Za-z0-9._-]{8,}|Basic [A-Za-z0-9+/=]{8,}/.test(text)) found.push('an Authorization header value');
  return found;
}

/**
 * Runs `fn` (once) when the phase starts its watch of `resource`, right after the mark's lists:
 * the watch starts at the lists' resourceVersion, so what `fn` changes reaches the sweep's view.
 */
export function whenWatchStarts(env: GcEnv, fn: () => void | Promise<void>, resource: 'bundles' | 'bundledeployments' = 'bundles'): { watches(): number } {
  let watches = 0;
  env.server.faults.add({
    verb: 'watch', group: 'fleet.cattle.io', resource,
    before: async () => {
      if (++watches === 1) await fn();
    },
  });
  return { watches: () => watches };
}

/** Nothing deleted: no Secret delete sent, no manifest DELETE accepted, every artifact resolves and keeps all its secrets. */
export async function expectNothingDeleted(env: GcEnv, ...artifacts: Artifact[]): Promise<void> {
  expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
  expect((await env.registryRequests()).filter((r) => /^DELETE .* 2\d\d$/.test(r))).toEqual([]);
  for (const a of artifacts) expect(await env.status(a), a.repository).toBe(200);
  expect(await env.secretsLeft(...artifacts)).toHaveLength(artifacts.flatMap((a) => a.secrets).length);
}
