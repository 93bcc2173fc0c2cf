// List chunking (limit/continue). Like etcd, a continued list reads the snapshot at the
// first page's resourceVersion; snapshots live `ttlMs` (kube: until etcd compacts that
// revision, ~5 minutes), after which the token is Expired (410) and the Status carries an
// "inconsistent" token (rv -1) that continues after the same key against current data.

import { badRequest, gone } from './errors.ts';
import type { KubeObject } from './types.ts';

interface Token {
  v: string;
  rv: number;
  start: string;
}

export function encodeContinue(rv: number, lastKey: string): string {
  const t: Token = { v: 'meta.k8s.io/v1', rv, start: `${lastKey}\u0000` };
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

export function decodeContinue(token: string): Token {
  let t: unknown;
  try {
    t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw badRequest(`invalid continue token: ${'illegal base64 data or JSON'}`);
  }
  const ok = t !== null && typeof t === 'object' && (t as Token).v === 'meta.k8s.io/v1' && typeof (t as Token).rv === 'number' && typeof (t as Token).start === 'string';
  if (!ok) throw badRequest('invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  return t as Token;
}

export const EXPIRED_MESSAGE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

interface Snapshot {
  items: KubeObject[];
  keys: string[];
  expires: number;
}

export class Snapshots {
  private readonly snaps = new Map<string, Snapshot>();
  private readonly ttlMs: number;

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  save(scope: string, rv: number, items: KubeObject[], keyOf: (o: KubeObject) => string): void {
    this.purge();
    this.snaps.set(`${scope}@${rv}`, { items, keys: items.map(keyOf), expires: Date.now() + this.ttlMs });
  }

  /** The items after the token's key at the token's revision; 410 Expired when gone. */
  resume(scope: string, token: Token): KubeObject[] {
    this.purge();
    const s = this.snaps.get(`${scope}@${token.rv}`);
    if (!s) {
      const err = gone('Expired', EXPIRED_MESSAGE);
      err.continueToken = Buffer.from(JSON.stringify({ ...token, rv: -1 })).toString('base64url');
      throw err;
    }
    return s.items.slice(firstAfter(s.keys, token.start));
  }

  private purge(): void {
    const now = Date.now();
    for (const [k, s] of this.snaps) if (s.expires <= now) this.snaps.delete(k);
  }
}

/** Index of the first key >= start (keys sorted). */
export function firstAfter(keys: string[], start: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid]! < start) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
