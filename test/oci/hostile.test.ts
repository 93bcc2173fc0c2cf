// The OCI phase against hostile inputs, one test per finding of issue 10: Secrets outside
// Fleet's remit, references that escape their prefix, a registry that lies about digests or
// echoes credentials, a cluster that forbids Secret deletes or loses an answer.
import { afterEach, expect, it } from 'vitest';
import { pushFleetArtifact } from '../registry/push.ts';
import { rawGet } from '../registry/raw-http.ts';
import { describeWithTools } from '../registry/tools.ts';
import { connectionData } from '../fixtures/oci-objects.ts';
import { BUNDLE_NS, CLUSTER_NS, credentialsIn, DAY, ago, gcEnv, PREFIX, type GcEnv } from './gc-env.ts';

let env: GcEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const warnings = (e: GcEnv) => e.kube.lines.filter((l) => l.level === 'warn').map((l) => l.msg);

describeWithTools('OCI phase against hostile inputs', ['docker-registry', 'skopeo'], () => {
  it('remit: a Secret of Fleet\'s type named by a contents id but without Fleet\'s label or owner is never deleted, nor its artifact', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const conn = env.registry.connection(PREFIX);
    const outside = await env.artifact({ use: 'none', secrets: false });
    for (const ns of ['kube-system', 'tenant-a']) await env.seeder.namespace(ns);
    // No label, no owner (kube-system); owner but no label (tenant-a); label but no owner (fleet-default).
    const bundle = await env.seeder.bundle(BUNDLE_NS, 'unrelated', undefined);
    await env.seeder.rawStorageSecret('kube-system', outside.contentsId, connectionData(conn));
    await env.seeder.core.createNamespacedSecret({
      namespace: 'tenant-a',
      body: { type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1', metadata: { name: outside.contentsId, ownerReferences: [{ apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'Bundle', name: 'unrelated', uid: bundle.metadata.uid! }] }, stringData: connectionData(conn) },
    });
    await env.seeder.core.createNamespacedSecret({
      namespace: CLUSTER_NS[0]!,
      body: { type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1', metadata: { name: outside.contentsId, labels: { 'fleet.cattle.io/bundle-internal-secret': 'true' } }, stringData: connectionData(conn) },
    });
    const outsideSecrets = [{ namespace: 'kube-system', name: outside.contentsId }, { namespace: 'tenant-a', name: outside.contentsId }, { namespace: CLUSTER_NS[0]!, name: outside.contentsId }];

    const result = await env.run({ allowMassDelete: true });

    expect(result.outcome).toBe('completed');
    expect(await env.status(stale)).toBe(404);
    expect(await env.secretsLeft(stale)).toEqual([]);
    expect(await env.seeder.existing(outsideSecrets)).toHaveLength(3);
    expect(await env.status(outside)).toBe(200);
    expect(env.server.requests.list({ verb: 'delete', resource: 'secrets' }).filter((r) => r.name === outside.contentsId)).toEqual([]);
  });

  it('a reference with ".." is refused: the Secret is held with one line and nothing outside its prefix is deleted', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const victim = await env.artifact({ use: 'none', secrets: false, prefix: 'victim' });
    const conn = env.registry.connection(PREFIX);
    const bundle = await env.seeder.bundle(BUNDLE_NS, 'sneaky', `s-${'1'.repeat(61)}`);
    await env.seeder.rawStorageSecret(BUNDLE_NS, victim.contentsId, { ...connectionData(conn), reference: `${env.registry.host}/fleet/../victim` }, bundle);
    const query = await env.artifact({ use: 'none', secrets: false });
    await env.seeder.rawStorageSecret(BUNDLE_NS, query.contentsId, { ...connectionData(conn), reference: `${env.registry.host}/${PREFIX}?n=1#frag` }, bundle);

    const result = await env.run({ allowMassDelete: true });

    expect(await env.status(victim)).toBe(200);
    expect(await env.seeder.existing([{ namespace: BUNDLE_NS, name: victim.contentsId }, { namespace: BUNDLE_NS, name: query.contentsId }])).toHaveLength(2);
    expect(await env.status(query)).toBe(200);
    const lines = warnings(env);
    expect(lines.filter((l) => l.includes(`${BUNDLE_NS}/${victim.contentsId}`) && /"\.\." path segment/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => l.includes(`${BUNDLE_NS}/${query.contentsId}`) && /query/.test(l))).toHaveLength(1);
    expect(result.outcome).not.toBe('failed');
  });

  it('a registry answering Docker-Content-Digest with another manifest\'s digest does not steer the delete', async () => {
    env = await gcEnv({ proxy: true });
    const proxy = env.proxy!;
    await env.artifacts(2, { use: 'bundle' });
    // Two manifests in one repository: an older push, then the one `latest` names.
    const stale = await env.artifact({ use: 'none', created: ago(3 * DAY) });
    const older = await pushFleetArtifact({ registry: env.registry, prefix: PREFIX }, { contentsId: stale.contentsId, created: ago(4 * DAY) });
    const latest = await pushFleetArtifact({ registry: env.registry, prefix: PREFIX }, { contentsId: stale.contentsId, created: ago(2 * DAY) });
    expect(older.digest).not.toBe(latest.digest);
    // The registry names the older manifest whenever `latest` is asked for, and serves latest's bytes.
    proxy.hooks = {
      onResponse: (req, _status, headers) => {
        if (req.url?.endsWith(`${stale.contentsId}/manifests/latest`)) headers['docker-content-digest'] = older.digest;
      },
    };
    const e = env;

    const result = await e.run({ allowMassDelete: true });

    for (const digest of [older.digest, latest.digest]) {
      expect((await rawGet(e.registry, `/v2/${stale.repository}/manifests/${digest}`, OCI)).status, digest).toBe(200);
    }
    expect(await e.secretsLeft(stale)).toHaveLength(stale.secrets.length);
    expect((await e.registryRequests()).filter((r) => /^DELETE .* 2\d\d$/.test(r))).toEqual([]);
    expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 0 });
  });

  it('Secret deletes forbidden (403): the phase ends failed and deletes no further manifest', async () => {
    env = await gcEnv();
    await env.artifacts(3, { use: 'bundle' });
    const stale = await env.artifacts(3, { use: 'none' });
    env.server.faults.add({ verb: 'delete', resource: 'secrets', status: 403, message: 'secrets "x" is forbidden: User "system:serviceaccount:cattle-fleet-system:fleet-cleanup" cannot delete resource "secrets"' });
    const e = env;

    const result = await e.run({ registryConcurrency: 1, allowMassDelete: true });

    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/forbid|403/i);
    expect(e.server.requests.count({ verb: 'delete', resource: 'secrets' })).toBe(1);
    const statuses = await Promise.all(stale.map((a) => e.status(a)));
    expect(statuses.filter((s) => s === 404)).toHaveLength(1);
  });

  it('a Secret delete applied whose answer was lost counts as deleted (audited delete, not skip)', async () => {
    env = await gcEnv();
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifact({ use: 'none' });
    const e = env;
    const first = stale.secrets[0]!;
    // The server applies the first attempt, then the answer is lost (500): the retry meets 404.
    e.server.faults.add({
      verb: 'delete', resource: 'secrets', namespace: first.namespace, name: first.name, times: 1, status: 500,
      before: async () => {
        await e.seeder.core.deleteNamespacedSecret({ namespace: first.namespace, name: first.name });
      },
    });

    const result = await e.run({ allowMassDelete: true });

    expect(result.outcome).toBe('completed');
    const audits = e.kube.audits().filter((l) => l.kind === 'Secret' && l.namespace === first.namespace && l.name === first.name);
    expect(audits.map((l) => l.action)).toEqual(['delete']);
    expect(result.tallies.ociSecrets).toMatchObject({ deleted: stale.secrets.length, skipped: 0 });
  });

  it('a registry error body echoing the Authorization header, or the credentials in plain, reaches no log line', async () => {
    env = await gcEnv({ registry: { auth: 'htpasswd' }, proxy: true });
    const proxy = env.proxy!;
    await env.artifacts(2, { use: 'bundle' });
    const stale = await env.artifacts(2, { use: 'none' });
    const { username, password } = env.registry;
    // The catalog (403: no orphan search) and every DELETE (500: retried, then the registry is out) echo what they got.
    proxy.hooks = {
      onRequest: (req) => {
        const auth = req.headers.authorization;
        if (!auth) return;
        const echo = `received Authorization: ${auth} for ${username}:${password} (password ${password})`;
        if (req.method === 'DELETE') return { status: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'UNKNOWN', message: echo }] }) };
        if (req.url?.startsWith('/v2/_catalog')) return { status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: echo }] }) };
      },
    };
    const e = env;

    const result = await e.run({ allowMassDelete: true });

    expect(result.outcome).toBe('partial');
    expect(e.kube.lines.some((l) => /DENIED/.test(l.msg))).toBe(true);
    expect(e.kube.lines.some((l) => /UNKNOWN/.test(l.msg))).toBe(true);
    expect(credentialsIn(e)).toEqual([]);
    expect(e.kube.text()).not.toContain(password!);
    for (const a of stale) expect(await e.status(a)).toBe(200);
  });
});
