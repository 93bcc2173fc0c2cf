// A small OCI distribution client for what the cleanup needs: resolve a tag, read a manifest,
// delete a manifest by digest, list the catalog and tags.
//
// Repository names: every `repo` argument, and every name the catalog yields, is RELATIVE to
// the connection's path prefix (for Fleet, a contents id). `repoPath(repo)` gives the full name
// the registry sees: `<pathPrefix>/<repo>`.
import { createHash } from 'node:crypto';
import type { Logger } from '../../log.ts';
import type { RegistryConnection } from '../storage-secret.ts';
import { Authenticator, type Scope } from './auth.ts';
import { RegistryError, registryErrorDetail } from './errors.ts';
import { parseRfc3339 } from './rfc3339.ts';
import { Transport, type HttpResponse } from './transport.ts';

export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const MANIFEST_ACCEPT = Object.values(MEDIA_TYPES).join(', ');
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

export interface RegistryClientOptions {
  /** Per attempt, connect to last body byte. Default 30 s. */
  timeoutMs?: number;
  /** Extra attempts for 429, 5xx, resets, refusals and timeouts. Default 3. */
  retries?: number;
  logger?: Logger;
  userAgent?: string;
  /**
   * Ask Bearer token servers for `pull,delete` on every repository up front, so that resolve +
   * delete of one artifact share one token. For the sweep; leave off for read-only use.
   */
  wantDelete?: boolean;
  /** Backoff base between retries (ms). Default 200. */
  backoffBaseMs?: number;
  /** The run's stop (budget, SIGTERM): reads in flight are aborted at once; see Transport. */
  signal?: AbortSignal;
  /** Clock for token lifetimes (epoch ms). */
  now?: () => number;
  /** Connections kept per origin (the registry, its token realm); send no more requests at once. Default 16. */
  connections?: number;
}

export interface ResolvedManifest {
  digest: string;
  mediaType: string;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
// One or more path components as the distribution spec allows them.
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export class RegistryClient {
  readonly connection: RegistryConnection;
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly wantDelete: boolean;

  constructor(conn: RegistryConnection, opts: RegistryClientOptions = {}) {
    this.connection = conn;
    this.wantDelete = opts.wantDelete ?? false;
    this.transport = new Transport(conn, {
      timeoutMs: opts.timeoutMs ?? 30_000,
      retries: opts.retries ?? 3,
      userAgent: opts.userAgent ?? 'fleet-cleanup',
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      connections: opts.connections ?? 16,
    });
    this.auth = new Authenticator(conn, this.transport, { now: opts.now ?? Date.now, ...(opts.logger ? { logger: opts.logger } : {}) });
  }

  /** HTTP requests sent so far (every attempt, token requests included). */
  get requestCount(): number {
    return this.transport.requestCount;
  }

  /** Connections opened so far (to the registry and its token realm). */
  get connectionCount(): number {
    return this.transport.connectionCount;
  }

  /** Token requests sent so far. */
  get tokenRequestCount(): number {
    return this.auth.tokenRequests;
  }

  /** The full repository name for `repo` (relative to the connection's path prefix). */
  repoPath(repo: string): string {
    if (!REPO_RE.test(repo)) throw new RangeError(`not a valid repository name: ${JSON.stringify(repo)}`);
    return this.connection.pathPrefix ? `${this.connection.pathPrefix}/${repo}` : repo;
  }

  /** GET /v2/: the registry answers. A 401 is fine (and teaches the auth scheme). */
  async ping(): Promise<void> {
    const res = await this.transport.send({ method: 'GET', url: this.url('/v2/'), headers: {} });
    if (res.status === 200) return;
    if (res.status === 401) {
      this.auth.learn(res.headers);
      return;
    }
    this.checkPlainHttpToTls(res);
    throw this.error(res.status === 404 ? 'unsupported' : 'protocol', res, `GET /v2/ answered ${res.status}: not an OCI distribution registry at ${this.transport.origin}`);
  }

  /** The digest `tag` points at, or null when the repository or tag does not exist. */
  async resolve(repo: string, tag = 'latest'): Promise<ResolvedManifest | null> {
    this.checkTag(tag);
    const full = this.repoPath(repo);
    const path = `/v2/${full}/manifests/${tag}`;
    const head = await this.call('HEAD', path, this.repoScope(full, ['pull']), full, { accept: MANIFEST_ACCEPT });
    if (head.status === 404) return null;
    if (head.status === 200) {
      const digest = header(head, 'docker-content-digest');
      const mediaType = header(head, 'content-type') ?? '';
      if (digest && DIGEST_RE.test(digest)) return { digest, mediaType };
    } else if (head.status !== 405) {
      throw this.statusError(head, 'HEAD', full);
    }
    // No usable digest header (or no HEAD support): GET and hash the bytes ourselves.
    const got = await this.getManifest(full, tag);
    return got ? { digest: got.digest, mediaType: got.mediaType } : null;
  }

  async manifest(repo: string, ref: string): Promise<{ digest: string; mediaType: string; manifest: any }> {
    const full = this.repoPath(repo);
    const got = await this.getManifest(full, ref);
    if (!got) throw new RegistryError('not-found', `registry ${this.connection.reference}: manifest ${full}:${ref} not found`, { status: 404, registry: this.connection.reference, repository: full });
    return got;
  }

  /**
   * The manifest's `org.opencontainers.image.created` annotation; undefined when absent or not
   * a strict RFC 3339 date-time with its timezone (see parseRfc3339).
   */
  async created(repo: string, ref: string): Promise<Date | undefined> {
    const { manifest } = await this.manifest(repo, ref);
    const value: unknown = manifest?.annotations?.[CREATED_ANNOTATION];
    const at = typeof value === 'string' ? parseRfc3339(value) : undefined;
    return at === undefined ? undefined : new Date(at);
  }

  /** DELETE a manifest by digest (never by tag: some registries would only untag). */
  async deleteManifest(repo: string, digest: string): Promise<'deleted' | 'already-gone'> {
    if (!DIGEST_RE.test(digest)) throw new RangeError(`deleteManifest needs a digest, got ${JSON.stringify(digest)}`);
    const full = this.repoPath(repo);
    const res = await this.call('DELETE', `/v2/${full}/manifests/${digest}`, this.repoScope(full, ['delete']), full);
    if (res.status === 202 || res.status === 200 || res.status === 204) return 'deleted';
    // A 404 after an earlier attempt that may have been applied (no answer, or 500/502/504) is
    // our own delete; after only unapplied ones (429, 503) someone else deleted it.
    if (res.status === 404) return res.earlierMayHaveApplied ? 'deleted' : 'already-gone';
    throw this.statusError(res, 'DELETE', full);
  }

  /** Repository names under the path prefix (relative to it), one page at a time, following `Link`. */
  async *catalog(pageSize = 100): AsyncGenerator<string[]> {
    const prefix = this.connection.pathPrefix ? `${this.connection.pathPrefix}/` : '';
    const scope: Scope = { type: 'registry', name: 'catalog', actions: ['*'] };
    for await (const body of this.pages(`/v2/_catalog?n=${pageSize}`, scope, undefined, 'catalog')) {
      const repos = (body as { repositories?: unknown }).repositories;
      if (repos !== null && repos !== undefined && !Array.isArray(repos)) throw this.protocol('the catalog answer has no repositories list');
      const names = ((repos ?? []) as unknown[]).filter((r): r is string => typeof r === 'string');
      const mine = prefix ? names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)) : names;
      if (mine.length > 0) yield mine;
    }
  }

  /** All tags of `repo`; [] when the repository is unknown or has none (distribution says `tags: null` after a delete). */
  async tags(repo: string, pageSize = 100): Promise<string[]> {
    const full = this.repoPath(repo);
    const out: string[] = [];
    for await (const body of this.pages(`/v2/${full}/tags/list?n=${pageSize}`, this.repoScope(full, ['pull']), full, 'tags')) {
      if (body === null) return out;
      const tags = (body as { tags?: unknown }).tags;
      if (Array.isArray(tags)) out.push(...tags.filter((t): t is string => typeof t === 'string'));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  // --- internals ---

  private repoScope(full: string, actions: string[]): Scope {
    const all = this.wantDelete ? [...new Set(['pull', 'delete', ...actions])] : actions;
    return { type: 'repository', name: full, actions: all };
  }

  private url(pathAndQuery: string): URL {
    return new URL(pathAndQuery, this.transport.origin);
  }

  /** One authenticated request: the known scheme up front, one renewal on 401, then a clear error. */
  private async call(method: 'GET' | 'HEAD' | 'DELETE', pathAndQuery: string, scope: Scope, repository: string | undefined, opts: { accept?: string } = {}): Promise<HttpResponse> {
    const url = this.url(pathAndQuery);
    const base: Record<string, string> = opts.accept ? { accept: opts.accept } : {};
    const send = (auth: string | undefined) =>
      this.transport.send({ method, url, headers: auth ? { ...base, authorization: auth } : base, ...(repository ? { repository } : {}) });
    const first = await this.auth.header(scope);
    let res = await send(first);
    this.checkPlainHttpToTls(res);
    if (res.status === 401) {
      const retry = await this.auth.onUnauthorized(res.headers, scope, first);
      if (retry) res = await send(retry);
      if (res.status === 401) throw this.unauthorized(res, method, repository, retry ?? first);
    }
    if (res.status === 403) {
      throw this.error('forbidden', res, `${method} ${repository ?? url.pathname} is forbidden (403) for the configured credentials`, repository);
    }
    return res;
  }

  private unauthorized(res: HttpResponse, method: string, repository: string | undefined, sent: string | undefined): RegistryError {
    const challenge = String(res.headers['www-authenticate'] ?? '');
    if (/error="?insufficient_scope/i.test(challenge)) {
      return this.error('forbidden', res, `the credentials are not allowed to ${method === 'DELETE' ? 'delete' : 'read'} ${repository ?? ''} (insufficient_scope)`.replace(/  +/g, ' '), repository);
    }
    const what = !this.auth.hasCredentials
      ? 'requires credentials and the secret has none (401)'
      : sent?.startsWith('Bearer ')
        ? 'refused the token issued for the credentials (401 Unauthorized)'
        : 'refused the credentials (401 Unauthorized)';
    return this.error('unauthorized', res, what, repository);
  }

  private async getManifest(full: string, ref: string): Promise<{ digest: string; mediaType: string; manifest: any } | null> {
    const res = await this.call('GET', `/v2/${full}/manifests/${ref}`, this.repoScope(full, ['pull']), full, { accept: MANIFEST_ACCEPT });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.statusError(res, 'GET', full);
    const computed = `sha256:${createHash('sha256').update(res.body).digest('hex')}`;
    if (ref.startsWith('sha256:') && ref !== computed) throw this.protocol(`manifest ${full}@${ref} does not hash to its digest (got ${computed})`, full);
    let manifest: any;
    try {
      manifest = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw this.protocol(`manifest ${full}:${ref} is not JSON`, full);
    }
    // The digest of the bytes read and checked, never the registry's word for it: a
    // Docker-Content-Digest naming another manifest must not steer a later delete.
    const digest = computed;
    const mediaType = header(res, 'content-type') ?? (typeof manifest?.mediaType === 'string' ? manifest.mediaType : '');
    return { digest, mediaType, manifest };
  }

  /** JSON pages following `Link: <...>; rel="next"`; yields null for a 404 (unknown repository). */
  private async *pages(first: string, scope: Scope, repository: string | undefined, what: string): AsyncGenerator<unknown> {
    let next: string | undefined = first;
    const seen = new Set<string>();
    while (next) {
      if (seen.has(next)) throw this.protocol(`${what} pagination loops (${next})`, repository);
      seen.add(next);
      const res = await this.call('GET', next, scope, repository);
      if (res.status === 404) {
        if (repository) {
          yield null;
          return;
        }
        throw this.error('unsupported', res, 'has no catalog API (GET /v2/_catalog answered 404)');
      }
      if (res.status !== 200) throw this.statusError(res, 'GET', repository);
      let body: unknown;
      try {
        body = JSON.parse(res.body.toString('utf8'));
      } catch {
        throw this.protocol(`${what} answer is not JSON`, repository);
      }
      yield body;
      next = this.nextLink(res);
    }
  }

  private nextLink(res: HttpResponse): string | undefined {
    const link = header(res, 'link');
    const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link) : null;
    if (!m) return undefined;
    const target = new URL(m[1]!, this.transport.origin);
    // Credentials and tokens only ever go to the registry's own origin.
    if (target.origin !== this.transport.origin) throw this.protocol(`pagination link points to another origin (${target.origin})`);
    return `${target.pathname}${target.search}`;
  }

  /** Go's TLS server answers plain http with this 400: the secret says basicHTTP for a TLS registry. */
  private checkPlainHttpToTls(res: HttpResponse): void {
    if (res.status === 400 && this.connection.basicHTTP && /HTTP request to an HTTPS server/i.test(res.body.toString('utf8'))) {
      throw this.error('protocol', res, 'serves https but the secret sets basicHTTP: "true" (plain http); remove basicHTTP');
    }
  }

  private checkTag(tag: string): void {
    if (!TAG_RE.test(tag)) throw new RangeError(`not a valid tag: ${JSON.stringify(tag)}`);
  }

  private statusError(res: HttpResponse, method: string, repository: string | undefined): RegistryError {
    if (res.status === 405 && method === 'DELETE') {
      return this.error('delete-disabled', res, 'refuses deletes (405); enable storage.delete.enabled (distribution) or the registry\'s delete setting', repository);
    }
    if (res.status === 405) return this.error('unsupported', res, `does not support ${method} here (405)`, repository);
    if (res.status === 404) return this.error('not-found', res, `${repository ?? 'resource'} not found (404)`, repository);
    return this.error('protocol', res, `${method} ${repository ?? ''} answered an unexpected ${res.status}`.replace(/  +/g, ' '), repository);
  }

  private error(kind: RegistryError['kind'], res: HttpResponse, what: string, repository?: string): RegistryError {
    const detail = registryErrorDetail(res.body);
    return new RegistryError(kind, `registry ${this.connection.reference} ${what}${detail ? ` [${detail}]` : ''}`, {
      status: res.status,
      registry: this.connection.reference,
      ...(repository ? { repository } : {}),
    });
  }

  private protocol(what: string, repository?: string): RegistryError {
    return new RegistryError('protocol', `registry ${this.connection.reference}: ${what}`, {
      registry: this.connection.reference,
      ...(repository ? { repository } : {}),
    });
  }
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
