// Where the registry client's credentials may go and what of them an error may carry, against
// scripted HTTP peers on two loopback hosts: a registry on 127.0.0.1, a token realm elsewhere.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { RegistryClient } from '../../src/oci/registry/index.ts';
import { registryFailure as failure } from './failure.ts';
import type { RegistryConnection } from '../../src/oci/storage-secret.ts';

const ID = `s-${'b'.repeat(61)}`;
const USER = 'fleet-writer';
const PASSWORD = 'pw-Secret-0123';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

const servers: Server[] = [];
const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function peer(address: string, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    answer(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, address, r));
  return { host: `${address}:${(server.address() as AddressInfo).port}`, seen };
}

function client(host: string): RegistryClient {
  const conn: RegistryConnection = { reference: `${host}/fleet`, host, pathPrefix: 'fleet', basicHTTP: true, insecureSkipTLS: false, username: USER, password: PASSWORD };
  const c = new RegistryClient(conn, { retries: 1, backoffBaseMs: 5, timeoutMs: 2000 });
  clients.push(c);
  return c;
}

it('Basic credentials never go over plain http to a Bearer realm on another host', async () => {
  const realm = await peer('127.0.0.2', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: 'tok-abcdefgh12345' }));
  });
  const registry = await peer('127.0.0.1', (_req, res) => {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${realm.host}/token",service="reg"` });
    res.end();
  });

  const err = await failure(client(registry.host).resolve(ID));

  expect(err.kind).toBe('protocol');
  expect(err.message).toMatch(/realm/);
  expect(realm.seen.filter((r) => r.headers.authorization)).toEqual([]);
});

it('a Bearer realm on the registry\'s own host over plain http (basicHTTP) still works', async () => {
  const registry = await peer('127.0.0.1', (req, res) => {
    if (req.url?.startsWith('/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'tok-abcdefgh12345' }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-abcdefgh12345') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="reg"` });
      res.end();
      return;
    }
    res.writeHead(404);
    res.end();
  });

  expect(await client(registry.host).resolve(ID)).toBeNull();
  expect(registry.seen.some((r) => r.url?.startsWith('/token') && r.headers.authorization === BASIC)).toBe(true);
});

it.each([
  ['a 4xx error body', 400],
  ['a 5xx error body (retried)', 500],
])('%s echoing the Authorization header and the credentials is scrubbed from the error', async (_title, status) => {
  const registry = await peer('127.0.0.1', (req, res) => {
    if (!req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
      res.end();
      return;
    }
    const echo = `got Authorization: ${req.headers.authorization}; user ${USER}:${PASSWORD}; password=${PASSWORD}; token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl`;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: echo }] }));
  });

  const err = await failure(client(registry.host).manifest(ID, 'latest'));

  expect(err.message).toMatch(/DENIED/);
  for (const secret of [PASSWORD, BASIC.slice(6), `${USER}:${PASSWORD}`, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl']) expect(err.message).not.toContain(secret);
});
