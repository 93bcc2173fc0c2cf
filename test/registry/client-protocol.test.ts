// The registry client against a scripted HTTP peer, for what a real distribution registry will
// not do on demand: missing digest headers, 429/5xx, resets, silence, hostile Link headers,
// odd challenges. Needs no binaries.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseChallenges, RegistryClient, RegistryError } from '../../src/oci/registry/index.ts';
import { registryFailure as failure } from './failure.ts';
import type { RegistryConnection } from '../../src/oci/storage-secret.ts';

type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'reset';
const script = new Map<string, Answer[]>();
const seen: string[] = [];

function answer(req: IncomingMessage, res: ServerResponse): void {
  const key = `${req.method} ${req.url}`;
  seen.push(key);
  const queue = script.get(key) ?? [];
  const next = queue.length > 1 ? queue.shift()! : (queue[0] ?? { status: 404 });
  if (next === 'reset') {
    req.socket.destroy();
    return;
  }
  res.writeHead(next.status, next.headers);
  res.end(req.method === 'HEAD' ? undefined : next.body);
}

let server: Server;
let host: string;
const clients: RegistryClient[] = [];
const conn = (extra: Partial<RegistryConnection> = {}): RegistryConnection => ({
  reference: `${host}/fleet`, host, pathPrefix: 'fleet', basicHTTP: true, insecureSkipTLS: false, ...extra,
});
function client(c: RegistryConnection = conn(), retries = 2): RegistryClient {
  const cl = new RegistryClient(c, { retries, backoffBaseMs: 5, timeoutMs: 2000 });
  clients.push(cl);
  return cl;
}
const ID = `s-${'a'.repeat(61)}`;
const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] });
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

beforeAll(async () => {
  server = createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  script.clear();
  seen.length = 0;
});

describe('resolve', () => {
  it('falls back to GET and hashes the bytes when HEAD has no Docker-Content-Digest', async () => {
    const type = { 'content-type': 'application/vnd.oci.image.manifest.v1+json' };
    script.set(`HEAD /v2/fleet/${ID}/manifests/latest`, [{ status: 200, headers: type }]);
    script.set(`GET /v2/fleet/${ID}/manifests/latest`, [{ status: 200, headers: type, body: MANIFEST }]);
    expect(await client().resolve(ID)).toEqual({ digest: DIGEST, mediaType: type['content-type'] });
  });

  it('rejects a manifest that does not hash to the digest asked for', async () => {
    script.set(`GET /v2/fleet/${ID}/manifests/${DIGEST}`, [{ status: 200, body: `${MANIFEST} ` }]);
    expect((await failure(client().manifest(ID, DIGEST))).kind).toBe('protocol');
  });
});

describe('retries', () => {
  const path = `HEAD /v2/fleet/${ID}/manifests/latest`;
  const ok: Answer = { status: 200, headers: { 'docker-content-digest': DIGEST, 'content-type': 'x' } };

  it('retries 503, 429 (Retry-After) and a reset connection, then succeeds', async () => {
    script.set(path, [{ status: 503 }, { status: 429, headers: { 'retry-after': '0' } }, 'reset', ok]);
    expect((await client(conn(), 3).resolve(ID))?.digest).toBe(DIGEST);
    expect(seen.filter((s) => s === path)).toHaveLength(4);
  });

  it('a 404 to a retried DELETE is ours only when an earlier attempt may have been applied (no answer, 500/502/504), else already gone', async () => {
    const del = `DELETE /v2/fleet/${ID}/manifests/${DIGEST}`;
    const cases: Array<[Answer[], 'deleted' | 'already-gone']> = [
      // A gateway timeout or a lost answer: the registry may have deleted it on our first attempt.
      [[{ status: 504 }, { status: 404 }], 'deleted'],
      [[{ status: 500 }, { status: 404 }], 'deleted'],
      [['reset', { status: 404 }], 'deleted'],
      [[{ status: 503 }, { status: 429, headers: { 'retry-after': '0' } }, { status: 502 }, { status: 404 }], 'deleted'],
      // Refused (503, 429): never applied, so something else deleted it meanwhile.
      [[{ status: 503 }, { status: 404 }], 'already-gone'],
      [[{ status: 429, headers: { 'retry-after': '0' } }, { status: 503 }, { status: 404 }], 'already-gone'],
      [[{ status: 404 }], 'already-gone'],
    ];
    for (const [answers, expected] of cases) {
      script.set(del, [...answers]);
      seen.length = 0;
      expect(await client(conn(), 3).deleteManifest(ID, DIGEST), JSON.stringify(answers)).toBe(expected);
      expect(seen.filter((s) => s === del)).toHaveLength(answers.length);
    }
  });

  it('gives up with one clear server error', async () => {
    script.set(path, [{ status: 500, body: JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'disk on fire' }] }) }]);
    const err = await failure(client(conn(), 2).resolve(ID));
    expect(err.kind).toBe('server');
    expect(err.status).toBe(500);
    expect(err.message).toBe(`registry ${host}/fleet: HEAD /v2/fleet/${ID}/manifests/latest answered 500 (gave up after 3 attempts)`);
  });

  it('a registry that never answers times out, naming host:port', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentHost = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const c = new RegistryClient(conn({ host: silentHost, reference: silentHost }), { retries: 0, timeoutMs: 200 });
    try {
      const err = await failure(c.ping());
      expect(err.kind).toBe('timeout');
      expect(err.message).toContain(silentHost);
    } finally {
      await c.close().catch(() => {});
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });
});

describe('created', () => {
  const at = (created: unknown) => {
    const body = JSON.stringify({ ...JSON.parse(MANIFEST), annotations: { 'org.opencontainers.image.created': created } });
    script.set(`GET /v2/fleet/${ID}/manifests/latest`, [{ status: 200, body }]);
    return client().created(ID, 'latest');
  };

  it('reads a strict RFC 3339 date-time with its timezone', async () => {
    expect(await at('2024-05-06T07:08:09.5+02:00')).toEqual(new Date('2024-05-06T05:08:09.500Z'));
  });

  it('is undefined for a value Date would read leniently: no timezone, a bare year, not a string', async () => {
    for (const value of ['2024-05-06T07:08:09', '2024-05-06', '1', 'May 6, 2024', 1714979289]) {
      expect(await at(value), JSON.stringify(value)).toBeUndefined();
    }
  });
});

describe('tags', () => {
  it('follows Link pages and treats an unknown repository as no tags', async () => {
    script.set(`GET /v2/fleet/${ID}/tags/list?n=2`, [{ status: 200, headers: { link: `</v2/fleet/${ID}/tags/list?n=2&last=b>; rel="next"` }, body: '{"tags":["a","b"]}' }]);
    script.set(`GET /v2/fleet/${ID}/tags/list?n=2&last=b`, [{ status: 200, body: '{"tags":["latest"]}' }]);
    expect(await client().tags(ID, 2)).toEqual(['a', 'b', 'latest']);
    expect(await client().tags(`s-${'b'.repeat(61)}`)).toEqual([]);
  });
});

describe('answers the client refuses', () => {
  it('a pagination Link to another origin is not followed', async () => {
    script.set('GET /v2/_catalog?n=1', [{ status: 200, headers: { link: '<https://evil.example/v2/_catalog?n=1&last=a>; rel="next"' }, body: '{"repositories":["fleet/a"]}' }]);
    const pages = client().catalog(1);
    expect(await pages.next()).toEqual({ done: false, value: ['a'] });
    expect((await failure(pages.next())).message).toContain('another origin');
  });

  it('403 is "forbidden"', async () => {
    script.set('GET /v2/_catalog?n=100', [{ status: 403, body: '{"errors":[{"code":"DENIED","message":"catalog is admin only"}]}' }]);
    const err = await failure(client().catalog().next());
    expect(err.kind).toBe('forbidden');
    expect(err.message).toContain('DENIED: catalog is admin only');
  });

  // The connection is kept alive after a HEAD (undici closes it by default, for such servers).
  // A server that sends a body after its HEAD answer must never make a later request on that
  // connection read those bytes as its own answer. One connection, so that the DELETE goes on
  // the HEAD's; the registry refuses it (405), so a "deleted" could only come from the stray.
  for (const when of ['with the headers', 'when the next request arrives'] as const) {
    it(`a body sent after a HEAD answer (${when}) is never read as the next request's answer`, async () => {
      const received: string[] = [];
      let straysBeforeAnAnswer = 0;
      const raw = createTcpServer((socket) => {
        let buffered = '';
        let stray: string | undefined;
        socket.on('data', (chunk) => {
          buffered += chunk.toString('latin1');
          for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
            const [method, path] = buffered.slice(0, end).split(' ');
            buffered = buffered.slice(end + 4);
            received.push(`${method} ${path}`);
            if (stray) {
              straysBeforeAnAnswer++;
              socket.write(stray);
            }
            stray = undefined;
            if (method === 'HEAD') {
              const headers = `HTTP/1.1 200 OK\r\nContent-Length: ${MANIFEST.length}\r\nDocker-Content-Digest: ${DIGEST}\r\n\r\n`;
              if (when === 'with the headers') socket.write(headers + MANIFEST);
              else {
                socket.write(headers);
                stray = MANIFEST;
              }
            } else {
              socket.write(`HTTP/1.1 ${method === 'DELETE' ? '405 Method Not Allowed' : '404 Not Found'}\r\nContent-Length: 0\r\n\r\n`);
            }
          }
        });
      });
      await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
      const rawHost = `127.0.0.1:${(raw.address() as AddressInfo).port}`;
      const c = new RegistryClient(conn({ host: rawHost, reference: `${rawHost}/fleet` }), { retries: 2, backoffBaseMs: 5, timeoutMs: 2000, connections: 1 });
      try {
        expect((await c.resolve(ID))?.digest).toBe(DIGEST);
        const err = await failure(c.deleteManifest(ID, DIGEST));
        expect(err.message).toContain('405');
        expect(received.filter((r) => r.startsWith('DELETE'))).not.toHaveLength(0);
        // Sent late, the stray did reach the DELETE on the HEAD's kept connection; it was refused.
        expect(straysBeforeAnAnswer).toBe(when === 'with the headers' ? 0 : 1);
      } finally {
        await c.close().catch(() => {});
        raw.close();
      }
    });
  }

  it('an unknown auth scheme is "unsupported"', async () => {
    script.set(`HEAD /v2/fleet/${ID}/manifests/latest`, [{ status: 401, headers: { 'www-authenticate': 'Negotiate' } }]);
    expect((await failure(client(conn({ username: 'u', password: 'p' })).resolve(ID))).kind).toBe('unsupported');
  });
});

describe('parseChallenges', () => {
  it('reads Bearer parameters, commas inside quotes included', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:fleet/a:pull,delete",error="invalid_token"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:fleet/a:pull,delete', error: 'invalid_token' } },
    ]);
  });
  it('reads several challenges and unquoted values', () => {
    expect(parseChallenges(['Basic realm="r"', 'Bearer realm=https://a/t, service=s'])).toEqual([
      { scheme: 'basic', params: { realm: 'r' } },
      { scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } },
    ]);
  });
});
