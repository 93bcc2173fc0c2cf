// Registry authentication: learn the scheme from the first 401 challenge, then send it up front
// on every later request (no 401 round trip per request). Basic sends the Secret's write
// credentials; Bearer fetches a token per scope from the challenge's realm (with Basic
// credentials when the Secret has some, anonymously otherwise) and caches it until shortly
// before it expires. Nothing here logs or puts into an error a credential or a token.
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../../log.ts';
import type { RegistryConnection } from '../storage-secret.ts';
import { RegistryError, rememberCredential } from './errors.ts';
import type { Transport } from './transport.ts';

export interface Challenge {
  /** Lower case: `basic`, `bearer`, ... */
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate` (RFC 7235), e.g. `Bearer realm="https://a/token",service="r",scope="repository:x:pull"`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let rest = value.trim();
    let current: Challenge | undefined;
    while (rest.length > 0) {
      const param = /^([A-Za-z0-9_.-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)\s*,?\s*/.exec(rest);
      if (param && current) {
        current.params[param[1]!.toLowerCase()] = param[3] !== undefined ? param[3].replace(/\\(.)/g, '$1') : param[2]!;
        rest = rest.slice(param[0].length);
        continue;
      }
      const scheme = /^([A-Za-z0-9_.-]+)\s*,?\s*/.exec(rest);
      if (!scheme) break;
      current = { scheme: scheme[1]!.toLowerCase(), params: {} };
      out.push(current);
      rest = rest.slice(scheme[0].length);
    }
  }
  return out;
}

/** A token scope: `repository:<full name>:pull,delete` or `registry:catalog:*`. */
export interface Scope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export const scopeString = (s: Scope): string => `${s.type}:${s.name}:${s.actions.join(',')}`;

function parseScope(text: string): Scope | undefined {
  // The name may contain ':' only in a registry host port, which repository names never have.
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const type = text.slice(0, first);
  if (type !== 'repository' && type !== 'registry') return undefined;
  return { type, name: text.slice(first + 1, last), actions: text.slice(last + 1).split(',').filter(Boolean) };
}

type KnownScheme = { kind: 'basic' } | { kind: 'bearer'; realm: URL; service: string | undefined };

interface CachedToken {
  value: string;
  actions: Set<string>;
  /** Epoch ms after which the token is not used any more. */
  usableUntil: number;
}

export interface AuthOptions {
  logger?: Logger;
  now: () => number;
}

export class Authenticator {
  private scheme: KnownScheme | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Token fetches under way, so concurrent requests for one scope share a single fetch. */
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly conn: RegistryConnection;
  private readonly transport: Transport;
  private readonly opts: AuthOptions;
  /** Token requests made (a measure for tests and benchmarks). */
  tokenRequests = 0;

  constructor(conn: RegistryConnection, transport: Transport, opts: AuthOptions) {
    this.conn = conn;
    this.transport = transport;
    this.opts = opts;
    if (conn.username) {
      const pair = `${conn.username}:${conn.password ?? ''}`;
      for (const c of [conn.password, pair, Buffer.from(pair, 'utf8').toString('base64')]) rememberCredential(c);
    }
  }

  get hasCredentials(): boolean {
    return Boolean(this.conn.username);
  }

  get schemeName(): 'basic' | 'bearer' | undefined {
    return this.scheme?.kind;
  }

  /** The Authorization header to send up front for `scope`; undefined until a challenge taught the scheme. */
  async header(scope: Scope): Promise<string | undefined> {
    if (!this.scheme) return undefined;
    if (this.scheme.kind === 'basic') return this.basicHeader();
    const cached = this.cachedToken(scope);
    if (cached) return `Bearer ${cached}`;
    return `Bearer ${await this.fetchToken(this.scheme, scope)}`;
  }

  /**
   * Learns from a 401 answer. Returns the header to retry with once, or undefined when a retry
   * cannot help (no credentials for Basic, or Basic credentials already refused).
   */
  async onUnauthorized(headers: IncomingHttpHeaders, scope: Scope, sent: string | undefined): Promise<string | undefined> {
    const challenges = parseChallenges(headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      const realm = this.realmUrl(bearer.params.realm);
      this.scheme = { kind: 'bearer', realm, service: bearer.params.service };
      // Renew: the cached token (if any) was just refused. Ask for what the registry said it needs too.
      this.tokens.delete(cacheKey(scope));
      const wanted = mergeScope(scope, bearer.params.scope);
      return `Bearer ${await this.fetchToken(this.scheme, wanted)}`;
    }
    if (basic) {
      this.scheme = { kind: 'basic' };
      if (!this.hasCredentials || sent?.startsWith('Basic ')) return undefined;
      return this.basicHeader();
    }
    if (challenges.length === 0) return undefined;
    throw new RegistryError('unsupported', `registry ${this.conn.reference} asks for an unsupported authentication scheme (${challenges.map((c) => c.scheme).join(', ')})`, {
      status: 401,
      registry: this.conn.reference,
    });
  }

  /** Learns the scheme from a `/v2/` 401 without fetching anything, so the next request authenticates up front. */
  learn(headers: IncomingHttpHeaders): void {
    const challenges = parseChallenges(headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) this.scheme = { kind: 'bearer', realm: this.realmUrl(bearer.params.realm), service: bearer.params.service };
    else if (challenges.some((c) => c.scheme === 'basic') && this.hasCredentials) this.scheme = { kind: 'basic' };
  }

  private basicHeader(): string | undefined {
    if (!this.conn.username) return undefined;
    return `Basic ${Buffer.from(`${this.conn.username}:${this.conn.password ?? ''}`, 'utf8').toString('base64')}`;
  }

  private cachedToken(scope: Scope): string | undefined {
    const hit = this.tokens.get(cacheKey(scope));
    if (!hit || hit.usableUntil <= this.opts.now()) return undefined;
    return scope.actions.every((a) => hit.actions.has(a) || hit.actions.has('*')) ? hit.value : undefined;
  }

  private realmUrl(realm: string | undefined): URL {
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new RegistryError('protocol', `registry ${this.conn.reference} sent a Bearer challenge without a valid realm URL`, { status: 401, registry: this.conn.reference });
    }
    // Credentials go to the realm: over https, or over plain http only when the Secret chose
    // plain http and the realm is the registry's own host (never to another host in the clear).
    const sameHost = url.hostname.toLowerCase() === registryHostname(this.conn.host);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.conn.basicHTTP && sameHost)) {
      throw new RegistryError('protocol', `registry ${this.conn.reference} names a token realm on ${url.protocol}//${url.host}, refused: credentials go only over https, or plain http (basicHTTP) to the registry's own host`, {
        status: 401,
        registry: this.conn.reference,
      });
    }
    return url;
  }

  private fetchToken(scheme: Extract<KnownScheme, { kind: 'bearer' }>, scope: Scope): Promise<string> {
    const key = scopeString(scope);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.requestToken(scheme, scope).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async requestToken(scheme: Extract<KnownScheme, { kind: 'bearer' }>, scope: Scope): Promise<string> {
    // Ask for everything already held for this name too, so one token keeps serving every use.
    const held = this.tokens.get(cacheKey(scope));
    const actions = [...new Set([...(held && held.usableUntil > this.opts.now() ? held.actions : []), ...scope.actions])];
    const wanted: Scope = { ...scope, actions };
    const url = new URL(scheme.realm);
    if (scheme.service) url.searchParams.set('service', scheme.service);
    url.searchParams.append('scope', scopeString(wanted));
    const basic = this.basicHeader();
    this.tokenRequests++;
    const res = await this.transport.send({ method: 'GET', url, headers: basic ? { authorization: basic } : {} });
    const where = `${url.origin}${url.pathname}`;
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError('unauthorized', `registry ${this.conn.reference}: the token server ${where} refused ${this.hasCredentials ? 'the credentials' : 'anonymous access (the secret has no credentials)'} (${res.status})`, {
        status: res.status,
        registry: this.conn.reference,
      });
    }
    if (res.status !== 200) {
      throw new RegistryError('protocol', `registry ${this.conn.reference}: the token server ${where} answered ${res.status}`, { status: res.status, registry: this.conn.reference });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body.toString('utf8')) as typeof body;
    } catch {
      throw new RegistryError('protocol', `registry ${this.conn.reference}: the token server ${where} answered with something that is not JSON`, { registry: this.conn.reference });
    }
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw new RegistryError('protocol', `registry ${this.conn.reference}: the token server ${where} answered without a token`, { registry: this.conn.reference });
    rememberCredential(token);
    // The spec's default lifetime is 60 s; stop using a token a little before it runs out.
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const margin = Math.min(10, lifetime * 0.1);
    this.prune();
    this.tokens.set(cacheKey(scope), { value: token, actions: new Set(actions), usableUntil: this.opts.now() + (lifetime - margin) * 1000 });
    this.opts.logger?.debug({ scope: scopeString(wanted), expiresIn: lifetime }, 'registry token obtained');
    return token;
  }

  private prune(): void {
    const now = this.opts.now();
    for (const [k, t] of this.tokens) if (t.usableUntil <= now) this.tokens.delete(k);
  }
}

/** The host name of `host[:port]` (IPv6 in brackets, as URL.hostname gives it), lower case. */
function registryHostname(host: string): string {
  return new URL(`http://${host}`).hostname.toLowerCase();
}

const cacheKey = (s: Scope): string => `${s.type}:${s.name}`;

/** Our scope plus whatever actions the challenge asked for on the same resource. */
function mergeScope(ours: Scope, challenged: string | undefined): Scope {
  if (!challenged) return ours;
  const actions = new Set(ours.actions);
  for (const part of challenged.split(' ')) {
    const s = parseScope(part);
    if (s && s.type === ours.type && s.name === ours.name) s.actions.forEach((a) => actions.add(a));
  }
  return { ...ours, actions: [...actions] };
}
