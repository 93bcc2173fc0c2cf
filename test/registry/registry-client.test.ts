// The registry client against a real CNCF distribution registry: no auth, htpasswd Basic,
// Bearer tokens from the test token server, TLS with the test CA, deletes disabled, a
// stopped registry. Artifacts are pushed in Fleet's exact format by skopeo.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, RegistryError, type RegistryClientOptions } from '../../src/oci/registry/index.ts';
import type { RegistryConnection } from '../../src/oci/storage-secret.ts';
import { captureLog } from './capture.ts';
import { FLEET_ARTIFACT_TYPE, FLEET_LAYER_TYPE, pushFleetArtifact } from './push.ts';
import { startRegistry, type RegistryOptions, type TestRegistry } from './registry.ts';
import { describeWithTools } from './tools.ts';

describeWithTools('RegistryClient against docker-registry', ['docker-registry', 'skopeo', 'htpasswd', 'openssl'], () => {
  const log = captureLog();
  const registries: TestRegistry[] = [];
  const clients: RegistryClient[] = [];
  /** Every error message the client produced, checked for secrets at the end. */
  const messages: string[] = [];

  async function registry(opts: RegistryOptions): Promise<TestRegistry> {
    const r = await startRegistry(opts);
    registries.push(r);
    return r;
  }

  function client(conn: RegistryConnection, opts: RegistryClientOptions = {}): RegistryClient {
    // Few, short retries: the failure tests should not wait on backoff.
    const c = new RegistryClient(conn, { logger: log.logger, retries: 1, backoffBaseMs: 10, timeoutMs: 10_000, ...opts });
    clients.push(c);
    return c;
  }

  async function failure(p: Promise<unknown>): Promise<RegistryError> {
    try {
      await p;
    } catch (e) {
      if (e instanceof RegistryError) {
        messages.push(e.message);
        return e;
      }
      throw e;
    }
    throw new Error('expected a RegistryError, the call succeeded');
  }

  /** resolve + delete of one artifact, the way the sweep does it; returns the HTTP requests it took. */
  async function deleteCounting(c: RegistryClient, contentsId: string): Promise<number> {
    const before = c.requestCount;
    const resolved = await c.resolve(contentsId);
    expect(resolved).not.toBeNull();
    expect(await c.deleteManifest(contentsId, resolved!.digest)).toBe('deleted');
    return c.requestCount - before;
  }

  const unauthorizedAnswers = async (r: TestRegistry, from: number): Promise<string[]> => (await r.requests()).slice(from).filter((l) => l.endsWith(' 401'));

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(registries.map((r) => r.dispose()));
  });

  describe('no auth', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry({ auth: 'none' });
    });

    it('reads back what Fleet pushed: manifest format and created date', async () => {
      const created = new Date('2024-05-06T07:08:09Z');
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' }, { created });
      const c = client(reg.connection('fleet'));
      expect(c.repoPath(pushed.contentsId)).toBe(`fleet/${pushed.contentsId}`);
      expect(await c.resolve(pushed.contentsId)).toEqual({ digest: pushed.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      const { manifest, digest } = await c.manifest(pushed.contentsId, 'latest');
      expect(digest).toBe(pushed.digest);
      expect(manifest.artifactType).toBe(FLEET_ARTIFACT_TYPE);
      expect(manifest.layers).toHaveLength(1);
      expect(manifest.layers[0]).toMatchObject({ mediaType: FLEET_LAYER_TYPE, annotations: { id: pushed.contentsId } });
      expect(await c.created(pushed.contentsId, pushed.digest)).toEqual(created);
    });

    it('created is undefined when the annotation is absent', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' }, { created: null });
      expect(await client(reg.connection('fleet')).created(pushed.contentsId, 'latest')).toBeUndefined();
    });

    it('resolve is null for an unknown repository or tag', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      expect(await c.resolve(`s-${'0'.repeat(61)}`)).toBeNull();
      expect(await c.resolve(pushed.contentsId, 'no-such-tag')).toBeNull();
    });

    it('deletes by digest (202), then reports already-gone (404); 2 requests per deleted artifact', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      expect(await c.tags(pushed.contentsId)).toEqual(['latest']);
      const before = (await reg.requests()).length;
      expect(await deleteCounting(c, pushed.contentsId)).toBe(2);
      expect((await reg.requests()).slice(before).map((l) => l.split(' ')[0] + ' ' + l.split(' ')[2])).toEqual(['HEAD 200', 'DELETE 202']);
      expect(await c.deleteManifest(pushed.contentsId, pushed.digest)).toBe('already-gone');
      expect(await c.resolve(pushed.contentsId)).toBeNull();
      // distribution keeps the repository with `tags: null`.
      expect(await c.tags(pushed.contentsId)).toEqual([]);
    });

    it('refuses to delete by tag', async () => {
      await expect(client(reg.connection('fleet')).deleteManifest('s-abc', 'latest')).rejects.toThrow(RangeError);
    });

    it('lists the catalog under the prefix page by page, following Link', async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await pushFleetArtifact({ registry: reg, prefix: 'paged' })).contentsId);
      await pushFleetArtifact({ registry: reg, prefix: 'elsewhere' });
      const c = client(reg.connection('paged'));
      const before = (await reg.requests()).length;
      const pages: string[][] = [];
      for await (const page of c.catalog(1)) pages.push(page);
      expect(pages.flat().sort()).toEqual([...ids].sort());
      expect(pages.every((p) => p.length === 1)).toBe(true);
      // One request per repository in the whole registry (n=1), and never a repeat.
      const catalogGets = (await reg.requests()).slice(before).filter((l) => l.startsWith('GET /v2/_catalog'));
      expect(catalogGets.length).toBeGreaterThan(ids.length);
      expect(new Set(catalogGets).size).toBe(catalogGets.length);
    });

    it('a stopped registry is "unreachable", naming host:port; it recovers after a restart', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      await reg.stop();
      try {
        const err = await failure(c.resolve(pushed.contentsId));
        expect(err.kind).toBe('unreachable');
        expect(err.message).toContain(reg.host);
        expect(err.message).toContain('connection refused');
        expect(err.message).toContain('gave up after 2 attempts');
      } finally {
        await reg.start();
      }
      expect((await c.resolve(pushed.contentsId))?.digest).toBe(pushed.digest);
    });

    it('TLS to a plain-http registry says it does not speak TLS', async () => {
      const err = await failure(client({ ...reg.connection('fleet'), basicHTTP: false }).ping());
      expect(err.kind).toBe('tls');
      expect(err.message).toContain('basicHTTP');
    });
  });

  describe('deletes disabled', () => {
    it('a delete is refused with 405 and says how to enable it; the artifact stays', async () => {
      const reg = await registry({ auth: 'none', deleteEnabled: false });
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      const err = await failure(c.deleteManifest(pushed.contentsId, pushed.digest));
      expect(err.kind).toBe('delete-disabled');
      expect(err.status).toBe(405);
      expect(err.message).toContain('refuses deletes');
      expect(err.message).toContain('storage.delete.enabled');
      expect(err.repository).toBe(`fleet/${pushed.contentsId}`);
      expect((await c.resolve(pushed.contentsId))?.digest).toBe(pushed.digest);
    });
  });

  describe('htpasswd (Basic)', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry({ auth: 'htpasswd' });
    });

    it('learns Basic once, then authenticates up front: 2 requests per deleted artifact', async () => {
      const a = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const b = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      const before = (await reg.requests()).length;
      // The first request meets the challenge (401) and is repeated with credentials.
      expect(await deleteCounting(c, a.contentsId)).toBe(3);
      expect(await deleteCounting(c, b.contentsId)).toBe(2);
      expect(await unauthorizedAnswers(reg, before)).toHaveLength(1);
    });

    it('wrong password: one clear unauthorized error naming the registry', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client({ ...reg.connection('fleet'), password: 'wrong-password-xyz' });
      const err = await failure(c.resolve(pushed.contentsId));
      expect(err.kind).toBe('unauthorized');
      expect(err.status).toBe(401);
      expect(err.message).toBe(`registry ${reg.reference('fleet')} refused the credentials (401 Unauthorized)`);
      expect(err.message).not.toContain('wrong-password-xyz');
    });

    it('no credentials: says the secret has none', async () => {
      const { username: _u, password: _p, ...anonymous } = reg.connection('fleet');
      const err = await failure(client(anonymous).catalog().next());
      expect(err.kind).toBe('unauthorized');
      expect(err.message).toContain('the secret has none');
    });
  });

  describe('Bearer tokens (and TLS with the test CA)', () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await registry({ auth: 'token', tls: true });
    });

    it('with wantDelete: one token per artifact, 3 requests per deleted artifact, no 401 after the first', async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await pushFleetArtifact({ registry: reg, prefix: 'fleet' })).contentsId);
      const c = client(reg.connection('fleet'), { wantDelete: true });
      await c.ping(); // learns the realm from /v2/'s challenge
      const before = (await reg.requests()).length;
      const tokensBefore = reg.tokenServer!.requests.length;
      for (const id of ids) expect(await deleteCounting(c, id)).toBe(3);
      expect(reg.tokenServer!.requests.slice(tokensBefore).map((r) => r.scopes)).toEqual(ids.map((id) => [`repository:fleet/${id}:pull,delete`]));
      expect(await unauthorizedAnswers(reg, before)).toEqual([]);
    });

    it('read-only use asks for pull, and widens to delete only when deleting: 4 requests per deleted artifact', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      await c.ping();
      const tokensBefore = reg.tokenServer!.requests.length;
      expect(await deleteCounting(c, pushed.contentsId)).toBe(4);
      expect(reg.tokenServer!.requests.slice(tokensBefore).map((r) => r.scopes[0])).toEqual([
        `repository:fleet/${pushed.contentsId}:pull`,
        `repository:fleet/${pushed.contentsId}:pull,delete`,
      ]);
    });

    it('caches the token: repeated reads of one repository fetch it once', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      const tokensBefore = reg.tokenServer!.requests.length;
      for (let i = 0; i < 3; i++) expect((await c.resolve(pushed.contentsId))?.digest).toBe(pushed.digest);
      await c.created(pushed.contentsId, 'latest');
      expect(reg.tokenServer!.requests.length - tokensBefore).toBe(1);
    });

    it('concurrent reads of one repository share one token fetch', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      await c.ping();
      const tokensBefore = reg.tokenServer!.requests.length;
      const results = await Promise.all(Array.from({ length: 5 }, () => c.resolve(pushed.contentsId)));
      expect(results.map((r) => r?.digest)).toEqual(Array(5).fill(pushed.digest));
      expect(reg.tokenServer!.requests.length - tokensBefore).toBe(1);
    });

    it('fetches a new token once the cached one has expired, without a 401', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      let now = Date.now();
      const c = client(reg.connection('fleet'), { now: () => now });
      reg.tokenServer!.ttlSeconds = 30;
      try {
        await c.ping();
        const before = (await reg.requests()).length;
        const tokensBefore = reg.tokenServer!.requests.length;
        await c.resolve(pushed.contentsId);
        await c.resolve(pushed.contentsId);
        expect(reg.tokenServer!.requests.length - tokensBefore).toBe(1);
        now += 31_000; // past the advertised lifetime
        await c.resolve(pushed.contentsId);
        expect(reg.tokenServer!.requests.length - tokensBefore).toBe(2);
        expect(await unauthorizedAnswers(reg, before)).toEqual([]);
      } finally {
        reg.tokenServer!.ttlSeconds = 300;
      }
    });

    it('renews once when the registry refuses a cached token', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      await c.ping();
      reg.tokenServer!.expireNext(1);
      const before = (await reg.requests()).length;
      const tokensBefore = reg.tokenServer!.requests.length;
      expect((await c.resolve(pushed.contentsId))?.digest).toBe(pushed.digest);
      expect(reg.tokenServer!.requests.length - tokensBefore).toBe(2);
      expect(await unauthorizedAnswers(reg, before)).toHaveLength(1);
    });

    it('fails after one renewal when the registry keeps refusing', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const c = client(reg.connection('fleet'));
      await c.ping();
      reg.tokenServer!.expireNext(5);
      const tokensBefore = reg.tokenServer!.requests.length;
      try {
        const err = await failure(c.resolve(pushed.contentsId));
        expect(err.kind).toBe('unauthorized');
        expect(err.message).toContain(`registry ${reg.reference('fleet')} refused the token`);
        expect(reg.tokenServer!.requests.length - tokensBefore).toBe(2);
      } finally {
        reg.tokenServer!.expireNext(0);
      }
    });

    it('wrong password: the token server refuses, named in one line', async () => {
      const c = client({ ...reg.connection('fleet'), password: 'wrong-password-abc' });
      const err = await failure(c.resolve(`s-${'1'.repeat(61)}`));
      expect(err.kind).toBe('unauthorized');
      expect(err.message).toContain(`registry ${reg.reference('fleet')}: the token server ${reg.tokenServer!.realm} refused the credentials (401)`);
      expect(err.message).not.toContain('wrong-password-abc');
    });

    it('catalog with a registry:catalog:* token', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'cat' });
      const c = client(reg.connection('cat'));
      const names: string[] = [];
      for await (const page of c.catalog(2)) names.push(...page);
      expect(names).toEqual([pushed.contentsId]);
      expect(reg.tokenServer!.requests.at(-1)?.scopes).toEqual(['registry:catalog:*']);
    });

    it('without the CA: a TLS error naming the issue (unknown CA) and host:port', async () => {
      const { cacerts: _ca, ...noCa } = reg.connection('fleet');
      const err = await failure(client(noCa).ping());
      expect(err.kind).toBe('tls');
      expect(err.message).toContain('unknown CA');
      expect(err.message).toContain(reg.host);
    });

    it('insecureSkipTLS connects without the CA', async () => {
      const pushed = await pushFleetArtifact({ registry: reg, prefix: 'fleet' });
      const { cacerts: _ca, ...noCa } = reg.connection('fleet');
      expect((await client({ ...noCa, insecureSkipTLS: true }).resolve(pushed.contentsId))?.digest).toBe(pushed.digest);
    });

    it('a certificate for another name: hostname mismatch', async () => {
      const port = reg.host.split(':')[1];
      const err = await failure(client({ ...reg.connection('fleet'), host: `localhost:${port}`, reference: `localhost:${port}/fleet` }).ping());
      expect(err.kind).toBe('tls');
      expect(err.message).toContain('hostname mismatch');
    });

    it('plain http to the TLS port says to check basicHTTP', async () => {
      const err = await failure(client({ ...reg.connection('fleet'), basicHTTP: true }).ping());
      expect(err.kind).toBe('protocol');
      expect(err.message).toContain('basicHTTP');
    });
  });

  describe('secrecy', () => {
    it('no password or token in any log line or error message', () => {
      const secrets = [
        ...registries.flatMap((r) => (r.password ? [r.password, Buffer.from(`${r.username}:${r.password}`).toString('base64')] : [])),
        ...registries.flatMap((r) => r.tokenServer?.issued ?? []),
        'wrong-password-xyz',
        'wrong-password-abc',
      ];
      // The suite must have produced tokens, logs and errors, or this proves nothing.
      expect(registries.some((r) => (r.tokenServer?.issued.length ?? 0) > 0)).toBe(true);
      expect(log.lines().filter((l) => l.msg === 'registry request').length).toBeGreaterThan(20);
      expect(messages.length).toBeGreaterThan(5);
      const haystack = `${log.text()}\n${messages.join('\n')}`;
      for (const s of secrets) expect(haystack.includes(s), 'a secret leaked').toBe(false);
      // Tokens also never travel in a logged URL.
      expect(haystack).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    });
  });
});
