// A deliberately naive registry GET for the harness, independent of src/: answers the one 401
// challenge it gets (Basic, or a Bearer token fetched with the test credentials) and returns
// the raw bytes. Used to check what actually landed in the registry.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TestRegistry } from './registry.ts';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(url: URL, headers: Record<string, string>, caPem: string | undefined): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, ...(caPem ? { ca: caPem } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function rawGet(registry: TestRegistry, path: string, accept?: string): Promise<RawResponse> {
  const url = new URL(path, `${registry.caPem ? 'https' : 'http'}://${registry.host}`);
  const headers: Record<string, string> = accept ? { accept } : {};
  const basic = registry.username ? `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` : undefined;
  const first = await get(url, headers, registry.caPem);
  if (first.status !== 401 || !basic) return first;
  const challenge = String(first.headers['www-authenticate'] ?? '');
  if (/^basic/i.test(challenge)) return get(url, { ...headers, authorization: basic }, registry.caPem);
  const param = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? '';
  const tokenUrl = new URL(param('realm'));
  tokenUrl.searchParams.set('service', param('service'));
  if (param('scope')) tokenUrl.searchParams.set('scope', param('scope'));
  const tokenRes = await get(tokenUrl, { authorization: basic }, registry.caPem);
  const token = (JSON.parse(tokenRes.body.toString('utf8')) as { token: string }).token;
  return get(url, { ...headers, authorization: `Bearer ${token}` }, registry.caPem);
}
