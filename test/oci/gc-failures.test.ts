// The OCI phase when something is wrong: no Fleet, no OCI storage, reads forbidden, malformed
// secrets, a registry that refuses deletes or goes away in the middle of the sweep. Whatever
// goes wrong, nothing that might be in use is deleted, and secrets outlive their artifact.
import { afterEach, expect, it } from 'vitest';
import { describeWithTools } from '../registry/tools.ts';
import { BUNDLE_NS, CLUSTER_NS, credentialsIn, expectNothingDeleted, gcEnv, whenWatchStarts, type GcEnv } from './gc-env.ts';

let env: GcEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const warnings = (e: GcEnv) => e.kube.lines.filter((l) => l.level === 'warn').map((l) => l.msg);

/** Resolves once the job has logged a watch closed by the server (bounded: 2 s). */
async function watchCloseSeen(e: GcEnv): Promise<void> {
  for (let i = 0; i < 1000 && !warnings(e).some((w) => w.includes('closed by the server')); i++) await new Promise((r) => setTimeout(r, 2));
}

describeWithTools('OCI garbage collection when things go wrong', ['docker-registry', 'skopeo'], () => {
  it('Fleet CRDs absent: skipped, saying so, without touching the registry', async () => {
    env = await gcEnv({ crds: false });
    await env.mark();

    const result = await env.run();

    expect(result).toMatchObject({ phase: 'oci', outcome: 'skipped', cause: expect.stringMatching(/Fleet CRDs not installed/) });
    expect(await env.registryRequests()).toEqual([]);
  });

  it('no OCI storage secret anywhere: skipped, saying so', async () => {
    env = await gcEnv({ connectionSecret: false });
    env.server.requests.reset();
    const result = await env.run();
    expect(result).toMatchObject({ outcome: 'skipped', cause: 'no OCI storage secret in any namespace' });
    expect(env.server.requests.count({ resource: 'bundles' })).toBe(0);
  });

  it('Bundle list forbidden: failed, and nothing deleted', async () => {
    env = await gcEnv();
    const stale = await env.artifact({ use: 'none' });
    const orphan = await env.artifact({ use: 'none', secrets: false });
    env.server.faults.add({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundles', status: 403, message: 'bundles.fleet.cattle.io is forbidden: User "system:serviceaccount:cattle-fleet-system:fleet-cleanup" cannot list resource "bundles"' });
    await env.mark();

    const result = await env.run({ allowMassDelete: true });

    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/list bundles\.fleet\.cattle\.io in all namespaces: 403 Forbidden/);
    expect(await env.registryRequests()).toEqual([]);
    expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
    expect(await env.status(stale)).toBe(200);
    expect(await env.status(orphan)).toBe(200);
    expect(await env.secretsLeft(stale)).toHaveLength(stale.secrets.length);
  });

  it.each([
    ['refused (403)', { status: 403 }],
    ['expired (410)', { status: 410, reason: 'Expired', message: 'too old resource version' }],
  ] as const)('the watch of what is in use is %s: failed, and nothing deleted', async (_title, fault) => {
    env = await gcEnv();
    const stale = await env.artifact({ use: 'none' });
    env.server.faults.add({ verb: 'watch', group: 'fleet.cattle.io', resource: 'bundledeployments', ...fault });

    const result = await env.run({ allowMassDelete: true });

    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/^watch bundledeployments\.fleet\.cattle\.io in all namespaces: 4\d\d .*nothing more deleted$/);
    expect(await env.status(stale)).toBe(200);
    expect(await env.secretsLeft(stale)).toHaveLength(stale.secrets.length);
    expect(env.server.requests.count({ verb: 'delete' })).toBe(0);
  });

  it('the watch is closed by the server early, in the middle of the sweep: failed, nothing more deleted', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    const e = env;
    // At the first secret delete, the server drops every watch (as an API server restart would),
    // and answers once the job has seen the close: a close is known only when it arrives.
    e.server.faults.add({ verb: 'delete', resource: 'secrets', times: 1, before: async () => {
      e.server.closeWatches();
      await watchCloseSeen(e);
    } });

    const result = await e.run({ registryConcurrency: 1, allowMassDelete: true });

    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/^watch (bundles|bundledeployments)\.fleet\.cattle\.io in all namespaces: closed by the server; the view of what is in use is not current, nothing more deleted$/);
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect([...statuses].sort()).toEqual([200, 200, 404]);
    expect(e.server.requests.count({ verb: 'delete', resource: 'secrets' })).toBe(1);
  });

  it('the watch is closed while the fresh read before a delete is on its way: that delete is not sent', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    const e = env;
    // After the first secret delete, the next fresh read's last list is answered only once the
    // job has seen every watch closed: the read itself succeeds, the view it joins is broken.
    e.server.faults.add({ verb: 'delete', resource: 'secrets', times: 1, before: () => {
      e.server.faults.add({ verb: 'list', resource: 'bundledeployments', times: 1, before: async () => {
        e.server.closeWatches();
        await watchCloseSeen(e);
      } });
    } });

    const result = await e.run({ registryConcurrency: 1, allowMassDelete: true });

    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/closed by the server; the view of what is in use is not current, nothing more deleted$/);
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect([...statuses].sort()).toEqual([200, 200, 404]);
    expect(e.server.requests.count({ verb: 'delete', resource: 'secrets' })).toBe(1);
  });

  it.each(['bundles', 'bundledeployments'] as const)('lock lost as the watch of %s starts: no manifest and no secret deleted, partial with that cause', async (resource) => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const orphan = await env.artifact({ use: 'none', secrets: false });
    const budget = new AbortController();
    const watch = whenWatchStarts(env, () => budget.abort(new Error('lock lost: lease fleet-cleanup is held by another run')), resource);
    await env.mark();

    const result = await env.run({}, { budget: budget.signal });

    expect(watch.watches()).toBe(1);
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/^lock lost: lease fleet-cleanup is held by another run/);
    await expectNothingDeleted(env, stale, orphan);
    expect((await env.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 0 });
  });

  it('budget spent in the middle of an item: nothing more deleted, not even that artifact\'s other secrets; partial', async () => {
    env = await gcEnv();
    await env.artifacts(3, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    const e = env;
    const budget = new AbortController();
    // The first secret delete comes right after the first artifact is gone: the budget runs out while it is sent.
    const stopper = e.server.faults.add({ verb: 'delete', resource: 'secrets', times: 1, before: () => budget.abort() });

    const result = await e.run({ registryConcurrency: 1 }, { budget: budget.signal });

    expect(stopper.hits).toBe(1);
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/time budget spent/);
    expect(e.server.requests.count({ verb: 'delete', resource: 'secrets' })).toBe(1);
    expect((await e.registryRequests()).filter((r) => r.startsWith('DELETE'))).toHaveLength(1);
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect([...statuses].sort()).toEqual([200, 200, 404]);
    const gone = stale.find((_, i) => statuses[i] === 404)!;
    const left = stale.filter((_, i) => statuses[i] === 200);
    // The secret in flight when the budget ran out went; the artifact's other secrets stay for the next run.
    expect(await e.secretsLeft(gone)).toHaveLength(gone.secrets.length - 1);
    expect(await e.secretsLeft(...left)).toHaveLength(left.flatMap((a) => a.secrets).length);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 1, kept: 5 });
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: 1 });
  });

  it('budget spent while the sweep re-reads what is in use: partial (the next run continues), nothing deleted', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifacts(2, { use: 'none' });
    const e = env;
    const budget = new AbortController();
    // The mark's Bundle list passes; the next one is the sweep's fresh read before the first delete: the budget runs out while it is out.
    let rereads: { readonly hits: number } | undefined;
    e.server.faults.add({
      verb: 'list', group: 'fleet.cattle.io', resource: 'bundledeployments', times: 1,
      before: () => void (rereads = e.server.faults.add({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundles', times: 1, before: () => budget.abort() })),
    });
    await e.mark();

    const result = await e.run({ registryConcurrency: 1, allowMassDelete: true }, { budget: budget.signal });

    expect(rereads?.hits).toBe(1);
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/^re-reading what is in use before a delete: time budget spent while listing what is in use/);
    await expectNothingDeleted(e, ...stale);
  });

  it('malformed secrets: one warning naming the secret and the key; it and its artifact are kept, the rest goes on', async () => {
    env = await gcEnv();
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const damaged = await env.artifact({ use: 'none' });
    // One clone of the damaged artifact's secrets says something that is not a boolean.
    const bad = { namespace: CLUSTER_NS[1]!, name: damaged.contentsId };
    await env.seeder.core.patchNamespacedSecret({ namespace: bad.namespace, name: bad.name, body: [{ op: 'add', path: '/data/basicHTTP', value: Buffer.from('maybe').toString('base64') }] });
    // A connection secret with no reference at all.
    await env.seeder.rawStorageSecret(BUNDLE_NS, 'broken-storage', { username: 'someone', password: 'hunter2-not-logged' });

    const result = await env.run();

    const lines = warnings(env);
    expect(lines.filter((m) => m.includes(`${bad.namespace}/${bad.name}`))).toEqual([expect.stringMatching(/key "basicHTTP" is not a boolean/)]);
    expect(lines.filter((m) => m.includes(`${BUNDLE_NS}/broken-storage`))).toEqual([expect.stringMatching(/key "reference" is missing/)]);
    expect(env.kube.text()).not.toContain('hunter2-not-logged');
    expect(await env.status(damaged)).toBe(200);
    expect(await env.secretsLeft(damaged)).toHaveLength(damaged.secrets.length);
    expect(await env.status(stale)).toBe(404);
    expect(await env.secretsLeft(stale)).toEqual([]);
    expect(result.outcome).toBe('completed');
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 1 });
  });

  it('deletes disabled (405): one clear line for the registry, artifacts and secrets kept, partial', async () => {
    env = await gcEnv({ registry: { deleteEnabled: false } });
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    await env.artifact({ use: 'bundle' });
    const stale = [await env.artifact({ use: 'none' }), await env.artifact({ use: 'none' }), await env.artifact({ use: 'none', secrets: false })];

    const result = await env.run({ registryConcurrency: 1 });

    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(new RegExp(`registry ${env.registry.host}/fleet/bundles refuses deletes \\(405\\).*3 artifacts kept`));
    expect(warnings(env).filter((m) => /refuses deletes/.test(m))).toHaveLength(1);
    await expectNothingDeleted(env, ...stale);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 0 });
  });

  it('registry stopped in the middle of the sweep: what was not deleted keeps its secrets; the next run finishes', async () => {
    env = await gcEnv();
    await env.artifacts(3, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    const e = env;
    // The first secret delete comes right after the first artifact is gone: stop the registry then.
    const stopper = e.server.faults.add({ verb: 'delete', resource: 'secrets', times: 1, before: () => e.registry.stop() });

    const first = await e.run({ registryConcurrency: 1 });

    expect(stopper.hits).toBe(1);
    expect(first.outcome).toBe('partial');
    expect(first.cause).toMatch(new RegExp(`registry ${e.registry.host}/fleet/bundles is unreachable: connection refused.*2 artifacts kept`));
    expect(warnings(e).filter((m) => /is unreachable/.test(m))).toHaveLength(1);
    expect(first.tallies.ociArtifacts).toMatchObject({ deleted: 1 });
    await e.registry.start();
    // Which one went first depends on list order; exactly one is gone, with its secrets.
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect([...statuses].sort()).toEqual([200, 200, 404]);
    const gone = stale.filter((_, i) => statuses[i] === 404);
    const left = stale.filter((_, i) => statuses[i] === 200);
    expect(await e.secretsLeft(...gone)).toEqual([]);
    expect(await e.secretsLeft(...left)).toHaveLength(left.flatMap((a) => a.secrets).length);

    const second = await e.run();
    expect(second.outcome).toBe('completed');
    for (const a of stale) expect(await e.status(a)).toBe(404);
    expect(await e.secretsLeft(...stale)).toEqual([]);
    expect(second.tallies.ociArtifacts).toMatchObject({ deleted: 2 });
  });

  it('TLS registry whose CA the secret does not carry: one TLS line, kept, partial; no credential logged', async () => {
    env = await gcEnv({ registry: { tls: true, auth: 'htpasswd' } });
    const e = env;
    const conn = e.registry.connection('fleet/bundles');
    const { cacerts: _dropped, ...withoutCa } = conn;
    // A second connection to the same registry without the CA: Fleet would fail the same way.
    await e.seeder.namespace('fleet-local');
    await e.seeder.connectionSecret('fleet-local', withoutCa, 'no-ca');
    await e.artifact({ use: 'bundle' });
    await e.artifact({ use: 'bundle' });
    const stale = await e.artifact({ use: 'none' });
    const staleNoCa = await e.artifact({ use: 'none', secrets: false });
    await e.seeder.artifactSecrets(staleNoCa.contentsId, withoutCa, { bundle: BUNDLE_NS });
    staleNoCa.secrets.push({ namespace: BUNDLE_NS, name: staleNoCa.contentsId });

    const result = await e.run();

    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/TLS error.*unknown CA/);
    expect(await e.status(staleNoCa)).toBe(200);
    expect(await e.secretsLeft(staleNoCa)).toHaveLength(1);
    expect(await e.status(stale)).toBe(404);
    expect(await e.secretsLeft(stale)).toEqual([]);
    expect(warnings(e).filter((m) => /TLS error/.test(m))).toHaveLength(1);
    expect(credentialsIn(e)).toEqual([]);
  });
});
