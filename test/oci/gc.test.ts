// The OCI phase end to end: a real docker-registry, the Kubernetes API test server, Fleet's
// objects. Asserted the way an operator would check: does `latest` still resolve, which
// secrets are left, what the audit lines and tallies say.
import { afterEach, expect, it } from 'vitest';
import { secretKeys, type SeededSecret } from '../fixtures/oci-objects.ts';
import { describeWithTools } from '../registry/tools.ts';
import { ago, BUNDLE_NS, CLUSTER_NS, credentialsIn, gcEnv, MIN, PREFIX, whenWatchStarts, type GcEnv } from './gc-env.ts';

let env: GcEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const artifactAudits = (e: GcEnv, action: 'delete' | 'would-delete' | 'skip') => e.kube.audits(action).filter((l) => l.kind === 'OCIArtifact');
const secretAudits = (e: GcEnv, action: 'delete' | 'would-delete' | 'skip') => e.kube.audits(action).filter((l) => l.kind === 'Secret');

describeWithTools('OCI garbage collection against docker-registry', ['docker-registry', 'skopeo'], () => {
  it('deletes stale and orphaned artifacts with their secrets and keeps everything in use, young, or not Fleet\'s', async () => {
    env = await gcEnv();
    const byBundle = await env.artifact({ use: 'bundle' });
    const byDeployment = await env.artifact({ use: 'deployment' });
    const byStagedOnly = await env.artifact({ use: 'staged' });
    const stale = await env.artifact({ use: 'none' });
    const oldOrphan = await env.artifact({ use: 'none', secrets: false });
    const freshOrphan = await env.artifact({ use: 'none', secrets: false, created: ago(5 * MIN) });
    const youngStale = await env.artifact({ use: 'none', created: ago(10 * MIN) });
    const outsidePrefix = await env.artifact({ use: 'none', secrets: false, prefix: 'other-team' });
    const notAnId = await env.artifact({ use: 'none', secrets: false, name: 'my-app' });
    // Deeper than directly under the prefix: `fleet/bundles/team-x/s-…` is not Fleet's layout.
    const nested = await env.artifact({ use: 'none', secrets: false, prefix: `${PREFIX}/team-x` });
    await env.mark();

    const result = await env.run();
    const requests = await env.registryRequests();

    expect(result).toMatchObject({ phase: 'oci', outcome: 'completed' });
    expect(result.cause).toBeUndefined();
    for (const gone of [stale, oldOrphan]) expect(await env.status(gone), gone.contentsId).toBe(404);
    for (const kept of [byBundle, byDeployment, byStagedOnly, freshOrphan, youngStale, outsidePrefix, notAnId, nested]) {
      expect(await env.status(kept), kept.repository).toBe(200);
    }
    expect(await env.secretsLeft(stale)).toEqual([]);
    expect(await env.secretsLeft(byBundle, youngStale)).toHaveLength(byBundle.secrets.length + youngStale.secrets.length);
    expect(await env.seeder.existing([{ namespace: 'fleet-default', name: 'ocistorage' }])).toEqual(['fleet-default/ocistorage']);

    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 2, skipped: 0, errors: 0 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: stale.secrets.length, skipped: 0, errors: 0 });

    const deleted = artifactAudits(env, 'delete');
    expect(deleted.map((l) => [l.name, l.digest]).sort()).toEqual([[stale.repository, stale.digest], [oldOrphan.repository, oldOrphan.digest]].sort());
    for (const line of deleted) expect(line).toMatchObject({ registry: env.registry.host, reason: expect.any(String) });
    expect(secretAudits(env, 'delete').map((l) => `${l.namespace}/${l.name}`).sort()).toEqual(stale.secrets.map((s) => `${s.namespace}/${s.name}`).sort());
    expect(secretAudits(env, 'delete').every((l) => typeof l.uid === 'string' && l.uid !== '')).toBe(true);

    // Registry requests per deleted artifact: read the manifest (plan), resolve latest, delete by digest.
    for (const a of [stale, oldOrphan]) {
      const mine = requests.filter((r) => r.includes(`/v2/${a.repository}/`));
      expect(mine.map((r) => r.split(' ')[0])).toEqual(['GET', 'HEAD', 'DELETE']);
      expect(mine.at(-1)).toBe(`DELETE /v2/${a.repository}/manifests/${a.digest} 202`);
    }
    expect(requests.filter((r) => r.startsWith('DELETE'))).toHaveLength(2);
    expect(credentialsIn(env)).toEqual([]);

    // A second run finds nothing more to delete (the emptied repositories stay in the catalog).
    await env.mark();
    const again = await env.run();
    expect(again.outcome).toBe('completed');
    expect(again.tallies.ociArtifacts).toMatchObject({ deleted: 0, errors: 0 });
    expect((await env.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
  });
  it('dry run: prints the plan (registry, repository, digest, age, why) and changes nothing', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const orphan = await env.artifact({ use: 'none', secrets: false });
    await env.mark();

    const result = await env.run({}, { dryRun: true });

    expect(result.outcome).toBe('completed');
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 2 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: stale.secrets.length });
    expect((await env.registryRequests()).filter((r) => !r.startsWith('GET') && !r.startsWith('HEAD'))).toEqual([]);
    expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
    expect(await env.status(stale)).toBe(200);
    expect(await env.status(orphan)).toBe(200);
    expect(await env.secretsLeft(stale)).toHaveLength(stale.secrets.length);

    const plan = artifactAudits(env, 'would-delete');
    expect(plan.map((l) => l.name).sort()).toEqual([stale.repository, orphan.repository].sort());
    const orphanLine = plan.find((l) => l.name === orphan.repository);
    expect(orphanLine).toMatchObject({ registry: env.registry.host, digest: orphan.digest, age: '2d', reason: expect.stringMatching(/orphan/) });
    expect(plan.find((l) => l.name === stale.repository)).toMatchObject({ digest: stale.digest, reason: expect.stringMatching(/no Bundle or BundleDeployment uses it/) });
    expect(secretAudits(env, 'would-delete')).toHaveLength(stale.secrets.length);
  });

  it('keeps a candidate that a Bundle starts using between the plan and the sweep', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    const reused = await env.artifact({ use: 'none' });
    const stale = await env.artifact({ use: 'none' });
    const e = env;
    // Right after the mark's lists: the plan still judges it stale, the watch brings the Bundle in.
    const watch = whenWatchStarts(e, async () => {
      await e.seeder.bundle(BUNDLE_NS, 'came-back', reused.contentsId);
    });

    const result = await e.run();

    expect(watch.watches()).toBe(1);
    expect(result.outcome).toBe('completed');
    expect(await e.status(reused)).toBe(200);
    expect(await e.secretsLeft(reused)).toHaveLength(reused.secrets.length);
    expect(await e.status(stale)).toBe(404);
    expect(await e.secretsLeft(stale)).toEqual([]);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 1, skipped: 1 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: stale.secrets.length, skipped: reused.secrets.length });
    const skipped = artifactAudits(e, 'skip');
    expect(skipped).toEqual([expect.objectContaining({ name: reused.repository, reason: 'in use again at re-check' })]);
  });

  it('reads and deletes artifacts several at once, never more than --registry-concurrency, over as many kept-alive connections', async () => {
    env = await gcEnv({ proxy: true });
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifacts(10, { use: 'none' });
    const e = env;
    let inFlight = 0;
    let most = 0;
    e.proxy!.hooks = {
      // Each request is held a moment, so that those sent together are seen together.
      beforeForward: async () => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 15));
      },
      onResponse: () => {
        inFlight--;
      },
    };
    await e.mark();
    const connectionsBefore = e.proxy!.connections;

    const result = await e.run({ registryConcurrency: 3, allowMassDelete: true });
    const sent = await e.registryRequests();

    expect(result.outcome).toBe('completed');
    for (const a of stale) expect(await e.status(a), a.contentsId).toBe(404);
    expect(most).toBe(3);
    // A GET, a HEAD and a DELETE per artifact (the catalog's pages besides) on at most the 3
    // connections used at once: none is closed after its HEAD, none opened while one is free.
    expect(sent.filter((r) => /^(GET|HEAD|DELETE) \S+\/manifests\//.test(r))).toHaveLength(30);
    expect(e.proxy!.connections - connectionsBefore).toBeLessThanOrEqual(3);
  });

  it('looks again right before the manifest DELETE: a Bundle that starts using the candidate while its latest is resolved keeps it', async () => {
    env = await gcEnv({ proxy: true });
    await env.artifacts(2, { use: 'bundle' });
    const reused = await env.artifact({ use: 'none' });
    const e = env;
    // The sweep's first look passed; while it resolves `latest` (HEAD), a Bundle names the id.
    let created = false;
    e.proxy!.hooks = {
      beforeForward: async (req) => {
        if (created || req.method !== 'HEAD' || !req.url?.includes(reused.contentsId)) return;
        created = true;
        await e.seeder.bundle(BUNDLE_NS, 'came-back', reused.contentsId);
      },
    };
    await e.mark();

    const result = await e.run();

    expect(created).toBe(true);
    expect(result.outcome).toBe('completed');
    expect(await e.status(reused)).toBe(200);
    expect(await e.secretsLeft(reused)).toHaveLength(reused.secrets.length);
    expect((await e.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
    expect(e.server.requests.count({ verb: 'delete' })).toBe(0);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 0, skipped: 1 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: 0, skipped: reused.secrets.length });
    expect(artifactAudits(e, 'skip')).toEqual([expect.objectContaining({ name: reused.repository, reason: 'in use again at re-check' })]);
  });

  it('looks again right before the secret deletes: in use again after its manifest went, the secrets stay and a warning says so', async () => {
    env = await gcEnv({ proxy: true });
    await env.artifacts(2, { use: 'bundle' });
    const reused = await env.artifact({ use: 'none' });
    const e = env;
    // While the manifest DELETE is on its way, a Bundle names the id again (Fleet rewrites an
    // identical Secret: its resourceVersion is unchanged).
    let created = false;
    e.proxy!.hooks = {
      beforeForward: async (req) => {
        if (created || req.method !== 'DELETE') return;
        created = true;
        await e.seeder.bundle(BUNDLE_NS, 'came-back', reused.contentsId);
      },
    };

    const result = await e.run();

    expect(created).toBe(true);
    expect(result.outcome).toBe('completed');
    expect(await e.status(reused)).toBe(404);
    expect(await e.secretsLeft(reused)).toHaveLength(reused.secrets.length);
    expect(e.server.requests.count({ verb: 'delete' })).toBe(0);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 1, skipped: 0 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: 0, skipped: reused.secrets.length });
    expect(secretAudits(e, 'skip').map((l) => l.reason)).toEqual(reused.secrets.map(() => 'in use again at re-check'));
    const warnings = e.kube.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^artifact ${reused.contentsId} was deleted, then found in use again at re-check: .*points at a deleted artifact.*secrets are kept`))]);
  });

  it('mass-delete brake: stops before any delete, reports the numbers; --allow-mass-delete passes', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    const stale = [await env.artifact({ use: 'none' }), await env.artifact({ use: 'none', secrets: false })];
    await env.mark();

    const braked = await env.run({ massDeleteMin: 1 });

    expect(braked.outcome).toBe('partial');
    expect(braked.cause).toMatch(/2 of 3 known Fleet artifacts/);
    expect(braked.cause).toMatch(/--allow-mass-delete/);
    expect((await env.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
    expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
    for (const a of stale) expect(await env.status(a)).toBe(200);
    expect(braked.tallies.ociArtifacts).toMatchObject({ deleted: 0 });

    const allowed = await env.run({ massDeleteMin: 1, allowMassDelete: true });
    expect(allowed.outcome).toBe('completed');
    for (const a of stale) expect(await env.status(a)).toBe(404);
    expect(await env.secretsLeft(...stale)).toEqual([]);
  });

  it('mass-delete brake: nothing in use while stale artifacts exist', async () => {
    env = await gcEnv();
    const stale = await env.artifact({ use: 'none' });

    const braked = await env.run();

    expect(braked.outcome).toBe('partial');
    expect(braked.cause).toMatch(/nothing uses OCI storage but 1 artifact would be deleted.*--allow-mass-delete/);
    expect(await env.status(stale)).toBe(200);
    expect(await env.secretsLeft(stale)).toHaveLength(stale.secrets.length);
  });

  it('mass-delete brake counts stale secrets whose artifact is missing: a registry that lost everything keeps every secret', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    // Six stale ids whose artifacts the registry answers 404 for (wiped, or hiding repositories).
    const conn = env.registry.connection(PREFIX);
    const missing: SeededSecret[] = [];
    for (const digit of '012345') missing.push(...(await env.seeder.artifactSecrets(`s-${digit.repeat(61)}`, conn, { bundle: BUNDLE_NS, clusters: CLUSTER_NS })));

    const braked = await env.run({ minAgeMs: 0 });

    expect(braked.outcome).toBe('partial');
    expect(braked.cause).toMatch(/mass-delete brake: 6 of 8 known Fleet artifacts \(75%\).*6 of them already missing from the registry.*--allow-mass-delete/);
    expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
    expect(await env.seeder.existing(missing)).toEqual(secretKeys(missing));
    expect(braked.tallies.ociSecrets).toMatchObject({ deleted: 0 });

    const allowed = await env.run({ minAgeMs: 0, allowMassDelete: true });
    expect(allowed.outcome).toBe('completed');
    expect(await env.seeder.existing(missing)).toEqual([]);
  });

  it('grace period: age from the created annotation, else the secret, else unknown (kept unless min age is 0)', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    // No annotation: the secret was just written, so the artifact is young.
    const youngBySecret = await env.artifact({ use: 'none', created: null });
    // No annotation, no secret: age unknown.
    const unknownAge = await env.artifact({ use: 'none', created: null, secrets: false });

    const kept = await env.run();
    expect(kept.outcome).toBe('completed');
    expect(await env.status(youngBySecret)).toBe(200);
    expect(await env.status(unknownAge)).toBe(200);
    expect(kept.tallies.ociArtifacts).toMatchObject({ deleted: 0 });

    const noGrace = await env.run({ minAgeMs: 0 });
    expect(noGrace.outcome).toBe('completed');
    expect(await env.status(youngBySecret)).toBe(404);
    expect(await env.status(unknownAge)).toBe(404);
    expect(await env.secretsLeft(youngBySecret)).toEqual([]);
    expect(artifactAudits(env, 'delete').find((l) => l.name === unknownAge.repository)).toMatchObject({ age: 'unknown', ageFrom: 'unknown' });
  });

  it('a spent time budget stops before any delete and reports partial', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const budget = new AbortController();
    // Spent while the plan is made: the first secret list page is the last thing done.
    env.server.faults.add({ verb: 'list', resource: 'secrets', before: () => budget.abort() });

    const result = await env.run({}, { budget: budget.signal });

    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/time budget spent/);
    expect(await env.status(stale)).toBe(200);
    expect(await env.secretsLeft(stale)).toHaveLength(stale.secrets.length);
  });
  it('a long sweep looks again at what is in use: a Bundle created after the first delete keeps the rest', async () => {
    env = await gcEnv();
    await env.artifacts(3, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    const e = env;
    // Right after the first artifact is deleted (its first secret delete), Bundles start using
    // all three again. The watch brings them into the view before the next look.
    e.server.faults.add({
      verb: 'delete', resource: 'secrets', times: 1,
      before: async () => {
        for (const [i, a] of stale.entries()) await e.seeder.bundle(BUNDLE_NS, `back-${i}`, a.contentsId);
      },
    });

    const result = await e.run({ registryConcurrency: 1 });

    expect(result.outcome).toBe('completed');
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect([...statuses].sort()).toEqual([200, 200, 404]);
    const kept = stale.filter((_, i) => statuses[i] === 200);
    expect(await e.secretsLeft(...kept)).toHaveLength(kept.flatMap((a) => a.secrets).length);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 1, skipped: 2 });
    expect(artifactAudits(e, 'skip').map((l) => l.reason)).toEqual(['in use again at re-check', 'in use again at re-check']);
    // The deleted one's first secret was already on its way; its others are looked at again and kept.
    const deleted = stale.find((_, i) => statuses[i] === 404)!;
    expect(await e.secretsLeft(deleted)).toHaveLength(deleted.secrets.length - 1);
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: 1, skipped: stale.flatMap((a) => a.secrets).length - 1 });
  });
  it('secrets whose artifact is already gone from the registry are deleted once past the grace period', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    // Fleet deleted the artifact, then failed to delete its secrets: they name nothing in the registry.
    const id = `s-${'ab'.repeat(30)}c`;
    const secrets = await env.seeder.artifactSecrets(id, env.registry.connection(PREFIX), { bundle: BUNDLE_NS, clusters: CLUSTER_NS });
    const keys = secrets.map((x) => `${x.namespace}/${x.name}`).sort();

    const young = await env.run();
    expect(young.outcome).toBe('completed');
    expect(await env.seeder.existing(secrets)).toEqual(keys);

    const result = await env.run({ minAgeMs: 0 });
    expect(result.outcome).toBe('completed');
    expect(await env.seeder.existing(secrets)).toEqual([]);
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: secrets.length });
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 0 });
    expect(secretAudits(env, 'delete').map((l) => `${l.namespace}/${l.name}`).sort()).toEqual(keys);
  });
});
