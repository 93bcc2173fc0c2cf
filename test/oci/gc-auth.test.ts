// The OCI phase against registries that ask for credentials (htpasswd Basic, Bearer tokens) or
// speak TLS with a private CA carried in the secret's `cacerts`: the same deletions as without,
// the registry requests each deleted artifact costs, and never a credential in the log.
import { afterEach, expect, it } from 'vitest';
import type { RegistryOptions } from '../registry/registry.ts';
import { describeWithTools } from '../registry/tools.ts';
import { BUNDLE_NS, CLUSTER_NS, credentialsIn, gcEnv, PREFIX, type GcEnv } from './gc-env.ts';

let env: GcEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const cases: Array<{ title: string; registry: RegistryOptions; tools: string[] }> = [
  { title: 'htpasswd Basic auth', registry: { auth: 'htpasswd' }, tools: ['htpasswd'] },
  { title: 'Bearer token auth', registry: { auth: 'token' }, tools: ['openssl'] },
  { title: 'TLS with a test CA passed as cacerts, and Basic auth', registry: { tls: true, auth: 'htpasswd' }, tools: ['openssl', 'htpasswd'] },
];

for (const c of cases) {
  describeWithTools(`OCI garbage collection: ${c.title}`, ['docker-registry', 'skopeo', ...c.tools], () => {
    it('deletes the stale artifact and the orphan, keeps what is in use, logs no credential', async () => {
      env = await gcEnv({ registry: c.registry });
      const inUse = [await env.artifact({ use: 'bundle' }), await env.artifact({ use: 'staged' })];
      const stale = await env.artifact({ use: 'none' });
      const orphan = await env.artifact({ use: 'none', secrets: false });
      await env.mark();
      const tokensBefore = env.registry.tokenServer?.requests.length ?? 0;

      const result = await env.run();

      expect(result.outcome).toBe('completed');
      expect(result.tallies.ociArtifacts).toMatchObject({ deleted: 2, errors: 0 });
      expect(result.tallies.ociSecrets).toMatchObject({ deleted: stale.secrets.length, errors: 0 });
      const requests = await env.registryRequests();
      const tokens = (env.registry.tokenServer?.requests.length ?? 0) - tokensBefore;
      expect(await env.status(stale)).toBe(404);
      expect(await env.status(orphan)).toBe(404);
      for (const a of inUse) expect(await env.status(a)).toBe(200);
      expect(await env.secretsLeft(stale)).toEqual([]);
      expect(await env.secretsLeft(...inUse)).toHaveLength(inUse.flatMap((a) => a.secrets).length);
      expect(credentialsIn(env)).toEqual([]);

      // Per deleted artifact: one manifest GET (plan), one HEAD (resolve) and one DELETE that
      // succeed; an auth challenge (401) is answered once per registry, not once per request.
      for (const a of [stale, orphan]) {
        const ok = requests.filter((r) => r.includes(`/v2/${a.repository}/`) && !r.endsWith(' 401'));
        expect(ok.map((r) => r.split(' ')[0])).toEqual(['GET', 'HEAD', 'DELETE']);
      }
      expect(requests.filter((r) => r.endsWith(' 401')).length).toBeLessThanOrEqual(2);
      // Bearer: one token per repository (pull and delete asked together) plus one for the catalog.
      if (c.registry.auth === 'token') expect(tokens).toBe(3);
      const phaseDone = env.kube.lines.find((l) => l.msg === 'oci storage phase done');
      console.info(`${c.title}: ${requests.length} registry requests and ${tokens} token requests for 2 deleted artifacts (client count ${String(phaseDone?.registryRequests)})`);
    });
  });
}

describeWithTools('OCI garbage collection: refused credentials', ['docker-registry', 'skopeo', 'htpasswd'], () => {
  it('wrong password: one line for the registry, everything kept, partial, the password in no log line', async () => {
    env = await gcEnv({ registry: { auth: 'htpasswd' }, connectionSecret: false });
    const e = env;
    const wrong = { ...e.registry.connection(PREFIX), password: 'wrong-password-never-logged' };
    await e.seeder.connectionSecret(BUNDLE_NS, wrong);
    await e.artifact({ use: 'bundle' });
    const stale = await e.artifact({ use: 'none', secrets: false });
    await e.seeder.artifactSecrets(stale.contentsId, wrong, { bundle: BUNDLE_NS, clusters: CLUSTER_NS });
    stale.secrets.push(...[BUNDLE_NS, ...CLUSTER_NS].map((namespace) => ({ namespace, name: stale.contentsId })));
    const orphan = await e.artifact({ use: 'none', secrets: false });

    const result = await e.run({ allowMassDelete: true });

    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/refused the credentials \(401 Unauthorized\)/);
    expect(e.kube.lines.filter((l) => l.level === 'warn' && /refused the credentials/.test(l.msg))).toHaveLength(1);
    expect(await e.status(stale)).toBe(200);
    expect(await e.status(orphan)).toBe(200);
    expect(await e.secretsLeft(stale)).toHaveLength(stale.secrets.length);
    expect(e.kube.text()).not.toContain('wrong-password-never-logged');
    expect(credentialsIn(e)).toEqual([]);
  });
});

