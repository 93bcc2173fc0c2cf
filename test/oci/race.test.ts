// Randomized races with Fleet while the OCI phase sweeps: Fleet re-points a Bundle at a
// candidate (pushing the artifact first), stages a BundleDeployment on one, or pushes an
// artifact and only then writes its Bundle. A delete that reaches the API server or the
// registry after Fleet's write naming its id was acknowledged deletes something in use (writes
// still in flight when the delete arrives are a tie, not counted).
// RACES (default 10) races, seeded (RACE_SEED) so that a failure can be replayed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FLEET_GROUP, FLEET_VERSION } from '../fixtures/fleet-objects.ts';
import { deploymentId, type FleetCustomObject } from '../fixtures/oci-objects.ts';
import { pushFleetArtifact } from '../registry/push.ts';
import { describeWithTools } from '../registry/tools.ts';
import { ago, BUNDLE_NS, CLUSTER_NS, DAY, gcEnv, PREFIX, type Artifact, type GcEnv } from './gc-env.ts';

const RACES = Number(process.env.RACES ?? 10);
const SEED = Number(process.env.RACE_SEED ?? 20261129);

/** mulberry32: small, seeded, good enough to spread timings. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let env: GcEnv;
beforeAll(async () => {
  env = await gcEnv({ proxy: true });
}, 60_000);
afterAll(async () => {
  await env?.close();
});

describeWithTools('OCI sweep racing Fleet', ['docker-registry', 'skopeo'], () => {
  it(`${RACES} randomized races: no delete reaches the cluster or the registry while its id is in use there`, async () => {
    const rnd = random(SEED);
    const e = env;
    const inUseDeleted: string[] = [];
    let deletes = 0;
    /** When Fleet's write naming an id was acknowledged (performance.now). */
    const namedAt = new Map<string, number>();
    const named = (id: string) => {
      if (!namedAt.has(id)) namedAt.set(id, performance.now());
    };
    // No check can see a write acknowledged after it (there is no precondition across objects):
    // a delete is wrong when Fleet's write was acknowledged before the job's last fresh read of
    // Bundles and BundleDeployments that preceded the delete. The sweep runs one item at a time
    // here, so that read is the delete's own check.
    const lastRead = { bundles: 0, bundledeployments: 0 };
    for (const resource of ['bundles', 'bundledeployments'] as const) {
      e.server.faults.add({ verb: 'list', group: 'fleet.cattle.io', resource, before: () => void (lastRead[resource] = performance.now()) });
    }
    const judge = (what: string, id: string) => {
      deletes++;
      const at = namedAt.get(id);
      if (at !== undefined && at < Math.min(lastRead.bundles, lastRead.bundledeployments)) inUseDeleted.push(what);
    };
    // Judged at arrival, before the request is applied.
    e.server.faults.add({ verb: 'delete', resource: 'secrets', before: (req) => judge(`Secret ${req.namespace}/${req.name}`, req.name ?? '') });
    e.proxy!.hooks = {
      beforeForward: async (req) => {
        if (req.method === 'DELETE') judge(`manifest ${req.url}`, /\/(s-[0-9a-f]{61})\/manifests\//.exec(req.url ?? '')?.[1] ?? '');
      },
    };

    for (let race = 0; race < RACES; race++) {
      const anchor = await e.artifact({ use: 'bundle' });
      const bundle = (await e.seeder.custom.listNamespacedCustomObject({ group: FLEET_GROUP, version: FLEET_VERSION, namespace: BUNDLE_NS, plural: 'bundles' })) as { items: FleetCustomObject[] };
      const anchorBundle = bundle.items.find((b) => b.spec.contentsId === anchor.contentsId)!;
      const stale: Artifact[] = await e.artifacts(3, { use: 'none', created: ago(2 * DAY) });

      const fleet = async () => {
        for (let step = 0; step < 3; step++) {
          await sleep(Math.floor(rnd() * 150));
          const target = stale[Math.floor(rnd() * stale.length)]!;
          const action = Math.floor(rnd() * 3);
          if (action === 0) {
            // Re-point the Bundle: push first, then write the Bundle's new contentsId.
            await pushFleetArtifact({ registry: e.registry, prefix: PREFIX }, { contentsId: target.contentsId });
            const current = (await e.seeder.custom.getNamespacedCustomObject({ group: FLEET_GROUP, version: FLEET_VERSION, namespace: BUNDLE_NS, plural: 'bundles', name: anchorBundle.metadata.name })) as FleetCustomObject;
            current.spec.contentsId = target.contentsId;
            await e.seeder.custom.replaceNamespacedCustomObject({ group: FLEET_GROUP, version: FLEET_VERSION, namespace: BUNDLE_NS, plural: 'bundles', name: anchorBundle.metadata.name, body: current });
            named(target.contentsId);
          } else if (action === 1) {
            // A rollout in progress: the staged id names the candidate.
            await e.seeder.bundleDeployment(CLUSTER_NS[1]!, `staged-${race}-${step}`, { deploymentID: deploymentId(anchor.contentsId), stagedDeploymentID: deploymentId(target.contentsId) });
            named(target.contentsId);
          } else {
            // Push, then the Bundle a little later.
            await pushFleetArtifact({ registry: e.registry, prefix: PREFIX }, { contentsId: target.contentsId });
            await sleep(Math.floor(rnd() * 50));
            await e.seeder.bundle(BUNDLE_NS, `pushed-${race}-${step}`, target.contentsId);
            named(target.contentsId);
          }
        }
      };
      const [result] = await Promise.all([e.run({ allowMassDelete: true, registryConcurrency: 1 }), fleet()]);
      expect(['completed', 'partial']).toContain(result.outcome);
    }

    console.log(`races ${RACES} (seed ${SEED}): ${deletes} deletes sent, ${inUseDeleted.length} reached the cluster or registry while in use${inUseDeleted.length ? `: ${inUseDeleted.slice(0, 5).join(', ')}` : ''}`);
    expect(deletes).toBeGreaterThan(0);
    expect(inUseDeleted).toEqual([]);
  }, 30 * 60_000);
});
