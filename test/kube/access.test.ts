import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeAccess } from '../../src/kube/access.ts';
import { KubeApiError, RequestAbandoned } from '../../src/kube/errors.ts';
import { createLogger } from '../../src/log.ts';
import { Writable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apfTooManyRequests } from '../apiserver/index.ts';

// A scripted HTTP peer: each request to a path takes the next canned answer, so the tests
// can say exactly what the API server does and count what the client sent.
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };
const script = new Map<string, Answer[]>();
const hits = new Map<string, number>();
const authorizations: Array<string | undefined> = [];

function respond(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  hits.set(path, (hits.get(path) ?? 0) + 1);
  authorizations.push(req.headers.authorization);
  const queue = script.get(path) ?? [];
  const answer = queue.length > 1 ? queue.shift()! : queue[0] ?? { status: 404, body: status(404, 'NotFound', 'no script') };
  res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
  res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {}));
}

function status(code: number, reason: string, message: string, extra: object = {}) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, metadata: {}, ...extra };
}

let server: ReturnType<typeof createServer>;
let url: string;
const logLines: Array<Record<string, unknown>> = [];

function accessFor(serverUrl: string, retries = 3, requestTimeoutMs = 2000): KubeAccess {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    // client-node refuses plain http unless TLS verification is explicitly off.
    clusters: [{ name: 'c', server: serverUrl, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token-value' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  return new KubeAccess(kc, {
    qps: 1000, burst: 1000, concurrency: 4, retries, requestTimeoutMs, backoffBaseMs: 1, backoffMaxMs: 5,
    logger: createLogger({ destination }),
  });
}

/** A server that takes requests and never answers them, for as long as `use` runs. */
async function withHungServer(onRequest: (req: IncomingMessage) => void, use: (url: string) => Promise<void>): Promise<void> {
  const hung = createServer(onRequest);
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  try {
    await use(`http://127.0.0.1:${(hung.address() as AddressInfo).port}`);
  } finally {
    hung.closeAllConnections();
    hung.close();
  }
}

const op = { verb: 'get', resource: 'configmaps', namespace: 'ns', name: 'cm' };
const readCm = (access: KubeAccess) =>
  access.call(op, (options) => access.core.readNamespacedConfigMap({ name: 'cm', namespace: 'ns' }, options));
const cmPath = '/api/v1/namespaces/ns/configmaps/cm';
const okCm = { status: 200, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'ns' }, data: { a: 'b' } } };

beforeAll(async () => {
  server = createServer(respond);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('KubeAccess', () => {
  it('retries 429 and 503 and then returns the object', async () => {
    script.set(cmPath, [
      apfTooManyRequests(0),
      { status: 503, body: status(503, 'ServiceUnavailable', 'etcd leader change') },
      okCm,
    ]);
    hits.clear();
    const access = accessFor(url);
    const cm = await readCm(access);
    expect(cm.data).toEqual({ a: 'b' });
    expect(hits.get(cmPath)).toBe(3);
    expect(access.requestCount).toBe(3);
  });

  it('gives up after the retries with one line naming the operation, the code and the attempts', async () => {
    script.set(cmPath, [{ status: 500, body: status(500, 'InternalError', 'etcdserver: request timed out') }]);
    hits.clear();
    const err = await readCm(accessFor(url, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as Error).message).toBe('get configmaps ns/cm: 500 InternalError: etcdserver: request timed out (gave up after 3 attempts)');
    expect(hits.get(cmPath)).toBe(3);
  });

  it('does not retry a 404 or a 409, and keeps the server reason', async () => {
    script.set(cmPath, [{ status: 404, body: status(404, 'NotFound', 'configmaps "cm" not found') }]);
    hits.clear();
    const err = (await readCm(accessFor(url)).catch((e: unknown) => e)) as KubeApiError;
    expect(err.status).toBe(404);
    expect(err.reason).toBe('NotFound');
    expect(err.message).toBe('get configmaps ns/cm: 404 NotFound: configmaps "cm" not found');
    expect(hits.get(cmPath)).toBe(1);
  });

  it('names the transport cause when nothing answers, and never logs the token', async () => {
    logLines.length = 0;
    // Port 2: below the ephemeral range, so no other test's listen(0) can take it, and nothing serves
    // it. Not port 1: fetch refuses that one ("bad port") before connecting.
    const err = (await readCm(accessFor('http://127.0.0.1:2', 1)).catch((e: unknown) => e)) as KubeApiError;
    expect(err.status).toBeUndefined();
    expect(err.reason).toBe('ECONNREFUSED');
    expect(err.message).toMatch(/^get configmaps ns\/cm: ECONNREFUSED: .*127\.0\.0\.1:2\b.*\(gave up after 2 attempts\)$/);
    expect(logLines.length).toBeGreaterThan(0);
    expect(JSON.stringify(logLines)).not.toContain('secret-token-value');
  });

  it('does not retry a configuration error such as plain http with TLS verification on', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const access = new KubeAccess(kc, { qps: 100, burst: 100, concurrency: 1, retries: 3, requestTimeoutMs: 1000, logger: createLogger({ destination: new Writable({ write: (_c, _e, d) => d() }) }) });
    const err = (await readCm(access).catch((e: unknown) => e)) as KubeApiError;
    expect(err.message).toMatch(/^get configmaps ns\/cm: RequestFailed: HTTP protocol is not allowed/);
    expect(access.requestCount).toBe(1);
  });

  it('does not send a queued request whose signal fired, nor retry after it fires', async () => {
    script.set(cmPath, [{ status: 503, body: status(503, 'ServiceUnavailable', 'busy') }]);
    hits.clear();
    const access = accessFor(url, 5);
    const stopped = AbortSignal.abort();
    const never = await access.call(op, (o) => access.core.readNamespacedConfigMap({ name: 'cm', namespace: 'ns' }, o), { signal: stopped }).catch((e: unknown) => e);
    expect(never).toBeInstanceOf(RequestAbandoned);
    expect((never as Error).message).toBe('get configmaps ns/cm: not sent: stopped before its turn');
    expect(hits.get(cmPath) ?? 0).toBe(0);

    // The signal fires once the first answer (503) is in: no retry follows.
    const halt = new AbortController();
    const once = await access
      .call(op, (o) => access.core.readNamespacedConfigMap({ name: 'cm', namespace: 'ns' }, o).finally(() => halt.abort()), { signal: halt.signal })
      .catch((e: unknown) => e);
    expect(once).toBeInstanceOf(RequestAbandoned);
    expect(hits.get(cmPath)).toBe(1);
  });

  it('drops a read in flight at once when the signal fires (a hung server does not hold the stop)', async () => {
    const hangPath = '/api/v1/namespaces/ns/configmaps/hang';
    await withHungServer((req) => void hits.set(new URL(req.url ?? '/', 'http://x').pathname, 1), async (hungUrl) => {
      const access = accessFor(hungUrl, 5);
      const halt = new AbortController();
      const started = performance.now();
      const pending = access.call(op, (o) => access.core.readNamespacedConfigMap({ name: 'hang', namespace: 'ns' }, o), { signal: halt.signal }).catch((e: unknown) => e);
      while (!hits.has(hangPath)) await new Promise((r) => setTimeout(r, 5));
      halt.abort();
      expect(await pending).toBeInstanceOf(RequestAbandoned);
      // Well inside the 2 s request timeout: the abort, not the timeout, ended it.
      expect(performance.now() - started).toBeLessThan(1500);
      await access.close();
    });
  });

  it('sends the credentials of the kubeconfig user as client-node applies them: a token file (as in a Pod), basic auth', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'access-creds-'));
    try {
      const tokenFile = join(dir, 'token');
      await writeFile(tokenFile, 'token-from-file');
      const users = [
        { name: 'pod', authProvider: { name: 'tokenFile', config: { tokenFile } } },
        { name: 'basic', username: 'ann', password: 'pw' },
      ];
      const expected = ['Bearer token-from-file', `Basic ${Buffer.from('ann:pw').toString('base64')}`];
      for (const [i, user] of users.entries()) {
        const kc = new KubeConfig();
        kc.loadFromOptions({ clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [user], contexts: [{ name: 'x', cluster: 'c', user: user.name }], currentContext: 'x' });
        const access = new KubeAccess(kc, { concurrency: 1, retries: 0, requestTimeoutMs: 2000, logger: createLogger({ destination: new Writable({ write: (_c, _e, d) => d() }) }) });
        script.set(cmPath, [okCm]);
        authorizations.length = 0;
        await readCm(access);
        expect(authorizations).toEqual([expected[i]]);
        await access.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives up on a request the server never answers after the request timeout, and retries it', async () => {
    let received = 0;
    await withHungServer(() => void received++, async (hungUrl) => {
      const access = accessFor(hungUrl, 1, 300);
      const started = performance.now();
      const err = (await access.call(op, (o) => access.core.readNamespacedConfigMap({ name: 'hang', namespace: 'ns' }, o)).catch((e: unknown) => e)) as KubeApiError;
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(KubeApiError);
      expect(err.message).toBe('get configmaps ns/cm: Timeout: The operation was aborted due to timeout (gave up after 2 attempts)');
      expect(received).toBe(2);
      // Two attempts of 300 ms each: not sooner, and not the minutes a missing timeout would take.
      expect(elapsed).toBeGreaterThanOrEqual(600);
      expect(elapsed).toBeLessThan(3000);
      await access.close();
    });
  });

  it('drops a write that the server refused (429) once the signal fires: it was not carried out', async () => {
    script.set(cmPath, [{ status: 429, body: status(429, 'TooManyRequests', 'slow down') }, okCm]);
    hits.clear();
    const access = accessFor(url, 5);
    const halt = new AbortController();
    const write = { verb: 'update', resource: 'configmaps', namespace: 'ns', name: 'cm' };
    const result = await access.call(write, (o) => { halt.abort(); return access.core.readNamespacedConfigMap({ name: 'cm', namespace: 'ns' }, o); }, { signal: halt.signal }).catch((e: unknown) => e);
    expect(result).toBeInstanceOf(RequestAbandoned);
    expect(hits.get(cmPath)).toBe(1);
  });

  it('sees a write through its retries once sent, even when the signal fires meanwhile', async () => {
    script.set(cmPath, [{ status: 500, body: status(500, 'InternalError', 'may have been applied') }, okCm]);
    hits.clear();
    const access = accessFor(url, 5);
    const halt = new AbortController();
    const write = { verb: 'update', resource: 'configmaps', namespace: 'ns', name: 'cm' };
    const cm = await access.call(write, (o) => { halt.abort(); return access.core.readNamespacedConfigMap({ name: 'cm', namespace: 'ns' }, o); }, { signal: halt.signal });
    expect(cm.data).toEqual({ a: 'b' });
    expect(hits.get(cmPath)).toBe(2);
  });

  it('carries the fresh continue token of a 410 Expired answer', async () => {
    const listPath = '/api/v1/configmaps';
    script.set(listPath, [{ status: 410, body: status(410, 'Expired', 'The provided continue parameter is too old', { metadata: { continue: 'fresh-token' } }) }]);
    const access = accessFor(url);
    const err = (await access
      .call({ verb: 'list', resource: 'configmaps' }, (options) => access.core.listConfigMapForAllNamespaces({ _continue: 'old' }, options))
      .catch((e: unknown) => e)) as KubeApiError;
    expect(err.status).toBe(410);
    expect(err.reason).toBe('Expired');
    expect(err.continueToken).toBe('fresh-token');
    expect(err.message).toMatch(/^list configmaps in all namespaces: 410 Expired/);
  });
});
