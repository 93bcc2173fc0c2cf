// The OCI part of `npm run demo`: a real docker-registry holding Fleet artifacts that are in use,
// stale (their Bundle is gone, old `created`), orphaned (no secret at all) or fresh, plus the
// Bundles, BundleDeployments and secrets Fleet would have written. After the job's runs, the
// report says what is left in the registry and in the cluster.
// Follows test/demo/seam.ts (SeedOciDemo); `describe`/`dispose` are the same as `report`/`stop`.
import type { KubeConfig } from '@kubernetes/client-node';
import { clusterNamespace, deploymentId, OciSeeder, type SeededSecret } from '../fixtures/oci-objects.ts';
import { pushFleetArtifact } from '../registry/push.ts';
import { rawGet } from '../registry/raw-http.ts';
import { startRegistry, type TestRegistry } from '../registry/registry.ts';
import { findTool } from '../registry/tools.ts';
import type { OciDemoStep } from './seam.ts';

const PREFIX = 'fleet/bundles';
const BUNDLE_NS = 'fleet-default';
const CLUSTERS = [clusterNamespace('demo-1'), clusterNamespace('demo-2')];
const DAY = 24 * 3600_000;

interface DemoArtifact {
  label: string;
  expect: 'kept' | 'deleted';
  repository: string;
  secrets: SeededSecret[];
}

export interface OciDemoEnv {
  kubeConfig: KubeConfig;
  /** One line of the demo's output (seam.ts calls it `print`). */
  log?: (line: string) => void;
  print?: (line?: string) => void;
}

export type OciDemo = OciDemoStep & { describe(): Promise<string>; dispose(): Promise<void> };

/** Undefined (after saying why) when docker-registry or skopeo is not installed. */
export async function seedOciDemo(env: OciDemoEnv): Promise<OciDemo | undefined> {
  const say = (line: string) => (env.log ?? env.print ?? console.log)(line);
  const missing = ['docker-registry', 'skopeo'].filter((t) => !findTool(t));
  if (missing.length > 0) {
    say(`OCI demo skipped: ${missing.join(' and ')} not installed (Debian packages docker-registry, skopeo); the job runs with --skip-oci`);
    return undefined;
  }
  const registry = await startRegistry();
  try {
    const seeder = new OciSeeder(env.kubeConfig);
    const artifacts = await seed(seeder, registry);
    const kept = artifacts.filter((a) => a.expect === 'kept').length;
    say(`seeded a docker-registry at ${registry.host} with ${artifacts.length} Fleet artifacts under ${PREFIX} (${kept} in use or fresh, ${artifacts.length - kept} stale or orphaned) and their Bundles, BundleDeployments and secrets`);
    const report = () => reportLines(registry, seeder, artifacts);
    return {
      args: [],
      report,
      stop: () => registry.dispose(),
      describe: async () => (await report()).join('\n'),
      dispose: () => registry.dispose(),
    };
  } catch (err) {
    await registry.dispose();
    throw err;
  }
}

async function seed(seeder: OciSeeder, registry: TestRegistry): Promise<DemoArtifact[]> {
  const conn = registry.connection(PREFIX);
  for (const ns of [BUNDLE_NS, ...CLUSTERS]) await seeder.namespace(ns);
  await seeder.connectionSecret(BUNDLE_NS, conn);
  const out: DemoArtifact[] = [];
  const old = new Date(Date.now() - 3 * DAY);

  const add = async (label: string, expect: DemoArtifact['expect'], created: Date, record: (id: string) => Promise<SeededSecret[]>) => {
    const { contentsId } = await pushFleetArtifact({ registry, prefix: PREFIX }, { created });
    out.push({ label, expect, repository: `${PREFIX}/${contentsId}`, secrets: await record(contentsId) });
  };
  const fleetRecord = (id: string) => seeder.artifactSecrets(id, conn, { bundle: BUNDLE_NS, clusters: CLUSTERS });

  for (const app of ['guestbook', 'monitoring']) {
    await add(`${app}: in use by its Bundle and BundleDeployments`, 'kept', old, async (id) => {
      const bundle = await seeder.bundle(BUNDLE_NS, app, id);
      for (const ns of CLUSTERS) await seeder.bundleDeployment(ns, app, { deploymentID: deploymentId(id) });
      return seeder.artifactSecrets(id, conn, { bundle: BUNDLE_NS, clusters: CLUSTERS }, bundle);
    });
  }
  await add('ingress: staged on a cluster, not yet deployed', 'kept', old, async (id) => {
    await seeder.bundleDeployment(CLUSTERS[0]!, 'ingress', { stagedDeploymentID: deploymentId(id) });
    return fleetRecord(id);
  });
  await add('guestbook, previous version: Bundle moved on, secrets left', 'deleted', old, fleetRecord);
  await add('old-app: Bundle deleted, artifact delete failed back then', 'deleted', old, fleetRecord);
  await add('orphan: pushed, never recorded in a secret', 'deleted', old, async () => []);
  await add('fresh push: Fleet has not written the Bundle yet', 'kept', new Date(), async () => []);
  return out;
}

async function reportLines(registry: TestRegistry, seeder: OciSeeder, artifacts: DemoArtifact[]): Promise<string[]> {
  const lines = [`OCI artifacts in ${registry.host}/${PREFIX} (deleted / kept; secrets left in the cluster):`];
  let surprises = 0;
  for (const a of artifacts) {
    const status = (await rawGet(registry, `/v2/${a.repository}/manifests/latest`, 'application/vnd.oci.image.manifest.v1+json')).status;
    const state = status === 404 ? 'deleted' : status === 200 ? 'kept' : `HTTP ${status}`;
    const left = (await seeder.existing(a.secrets)).length;
    const secrets = a.secrets.length === 0 ? 'no secrets' : `${left} of ${a.secrets.length} secrets left`;
    const note = state === a.expect ? '' : `   <- expected ${a.expect}`;
    if (note) surprises++;
    lines.push(`  ${state.padEnd(8)} ${a.label} (${secrets})${note}`);
  }
  if (surprises > 0) lines.push(`  ${surprises} artifact${surprises === 1 ? '' : 's'} not as expected: see the JSON logs`);
  return lines;
}
