// HTTP to one registry (and its token realm): one undici Agent per client carrying the TLS
// settings, a timeout per attempt, and retries with backoff for what is transient (429, 5xx,
// connection resets and refusals, timeouts). TLS failures are never retried: they do not heal.
import { rootCertificates } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import type { Logger } from '../../log.ts';
import type { RegistryConnection } from '../storage-secret.ts';
import { fromTransportError, RegistryError, registryErrorDetail } from './errors.ts';
import { messageOf } from '../../error-text.ts';
import { Abandoned, DEFAULT_BACKOFF, retrying, type Clock } from '../../retry.ts';

export interface TransportOptions {
  timeoutMs: number;
  /** Extra attempts after the first for transient failures. */
  retries: number;
  logger?: Logger;
  userAgent: string;
  /** Backoff base; tests shrink it. */
  backoffBaseMs?: number;
  /** The run's stop (budget, SIGTERM, lost lock): reads are aborted at once, even in flight. */
  signal?: AbortSignal;
  clock?: Clock;
  /**
   * HTTP/1.1 connections kept per origin (over TLS undici may use one HTTP/2 session instead).
   * Requests beyond it wait for one to be free instead of opening another: without a cap, a
   * request sent the moment the previous one's body ended often finds that connection not yet
   * released and opens a new one. The per-attempt timeout includes that wait, so callers send
   * no more at once than this.
   */
  connections: number;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  repository?: string;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /**
   * Whether an earlier attempt of this request may have been applied by the registry: it got
   * no answer after it may have been sent (reset, closed, timed out), or a 500, 502 or 504
   * (the server, or a proxy in front of it, may have acted and lost the answer). A 429 or 503
   * attempt was refused, and a refused connection or failed name lookup never sent anything.
   * So a 404 to a retried DELETE answers our own earlier attempt only when this is true.
   */
  earlierMayHaveApplied: boolean;
}

/** Answers after which the request may have been carried out all the same. */
const MAY_HAVE_APPLIED_STATUS = new Set([500, 502, 504]);
/** Transport failures known to happen before anything was sent. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Manifests are capped at 4 MiB by distribution; nothing this client reads is larger. */
const MAX_BODY = 8 * 1024 * 1024;

export class Transport {
  /** scheme://host[:port] of the registry. */
  readonly origin: string;
  private readonly agent: Agent;
  private readonly conn: RegistryConnection;
  private readonly opts: TransportOptions;
  /** Requests actually sent (every attempt, token requests included). */
  requestCount = 0;
  /** Connections opened (a pool that reuses them opens about as many as run at once). */
  connectionCount = 0;

  constructor(conn: RegistryConnection, opts: TransportOptions) {
    this.conn = conn;
    this.opts = opts;
    this.origin = `${conn.basicHTTP ? 'http' : 'https'}://${conn.host}`;
    this.agent = new Agent({
      connect: {
        timeout: opts.timeoutMs,
        rejectUnauthorized: !conn.insecureSkipTLS,
        // The Secret's CA bundle is trusted in addition to the usual public roots.
        ...(conn.cacerts ? { ca: [...rootCertificates, conn.cacerts] } : {}),
      },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connections: opts.connections,
    });
    this.agent.on('connect', () => {
      this.connectionCount++;
    });
  }

  /**
   * Sends with retries (src/retry.ts: full-jitter backoff, Retry-After capped, the run's stop
   * honoured: a read in flight is aborted at once, a DELETE once sent is retried to a known
   * outcome); returns the first non-transient answer, or throws a RegistryError.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const what = `${req.method} ${req.url.pathname}`;
    const attempts = this.opts.retries + 1;
    const where = { registry: this.conn.reference, ...(req.repository ? { repository: req.repository } : {}) };
    try {
      return await retrying(
        async (attempt) => {
          let res: Omit<HttpResponse, 'earlierMayHaveApplied'>;
          try {
            res = await this.once(req, attempt.signal);
          } catch (err) {
            if (err instanceof RegistryError) throw err;
            throw fromTransportError(err, { ...where, origin: req.url.host, what, timeoutMs: this.opts.timeoutMs });
          }
          if (res.status === 429 || (res.status >= 500 && res.status !== 501)) {
            throw new RegistryError('server', `registry ${this.conn.reference}: ${what} answered ${res.status}${detailSuffix(res.body)}`, {
              status: res.status,
              ...where,
              ...retryAfter(res.headers),
            });
          }
          return { ...res, earlierMayHaveApplied: attempt.earlierMayHaveApplied };
        },
        {
          retries: this.opts.retries,
          backoff: { ...DEFAULT_BACKOFF, baseMs: this.opts.backoffBaseMs ?? DEFAULT_BACKOFF.baseMs, maxMs: 5_000 },
          ...(this.opts.clock ? { clock: this.opts.clock } : {}),
          signal: this.opts.signal,
          write: req.method === 'DELETE',
          classify: (err) => {
            const e = err as RegistryError;
            return {
              retryable: e.retryable,
              // Unknown codes count as maybe sent: only a known never-sent failure rules it out.
              mayHaveApplied: e.status !== undefined ? MAY_HAVE_APPLIED_STATUS.has(e.status) : !(e.code && NOT_SENT_CODES.has(e.code)),
              ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
            };
          },
          onGiveUp: (err, made) => {
            const e = err as RegistryError;
            return new RegistryError(e.kind, `${e.message} (gave up after ${made} attempt${made === 1 ? '' : 's'})`, {
              registry: e.registry,
              ...(e.status !== undefined ? { status: e.status } : {}),
              ...(e.repository ? { repository: e.repository } : {}),
              ...(e.code ? { code: e.code } : {}),
            });
          },
        },
      );
    } catch (err) {
      if (!(err instanceof Abandoned)) throw err;
      const reason = messageOf(this.opts.signal?.reason ?? 'stopped');
      throw new RegistryError('timeout', `registry ${this.conn.reference}: ${what}: stopped (${reason})`, { ...where, code: 'ABORTED' });
    }
  }

  private async once(req: HttpRequest, stop: AbortSignal | undefined): Promise<Omit<HttpResponse, 'earlierMayHaveApplied'>> {
    const started = Date.now();
    this.requestCount++;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const res = await request(req.url, {
      method: req.method,
      headers: { 'user-agent': this.opts.userAgent, ...req.headers },
      dispatcher: this.agent,
      // Kept alive after a HEAD too: undici closes the connection after every HEAD by default,
      // for servers that wrongly send a body, and the sweep sends one HEAD per artifact. Such a
      // body is never taken for the next answer: bytes on an idle connection close it, and bytes
      // that arrive after the next request fail that request's parse (a retry, on a new
      // connection). test/registry/client-protocol.test.ts sends both.
      ...(req.method === 'HEAD' ? { reset: false } : {}),
      signal: stop ? AbortSignal.any([timeout, stop]) : timeout,
    });
    const body = await readCapped(res.body, req.method === 'HEAD', this.conn.reference);
    // The URL carries no credential (tokens and passwords only travel in the Authorization header).
    this.opts.logger?.debug(
      { method: req.method, url: `${req.url.origin}${req.url.pathname}${req.url.search}`, status: res.statusCode, ms: Date.now() - started },
      'registry request',
    );
    return { status: res.statusCode, headers: res.headers, body };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function detailSuffix(body: Buffer): string {
  const d = registryErrorDetail(body);
  return d ? ` (${d})` : '';
}

function retryAfter(headers: IncomingHttpHeaders): { retryAfterMs?: number } {
  const h = headers['retry-after'];
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return {};
  if (/^\d+$/.test(v.trim())) return { retryAfterMs: Number(v.trim()) * 1000 };
  const at = Date.parse(v);
  return Number.isNaN(at) ? {} : { retryAfterMs: Math.max(0, at - Date.now()) };
}

async function readCapped(body: AsyncIterable<Buffer> & { dump?: () => Promise<void> }, head: boolean, registryRef: string): Promise<Buffer> {
  if (head) {
    await body.dump?.();
    return Buffer.alloc(0);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY) throw new RegistryError('protocol', `response body larger than ${MAX_BODY} bytes`, { registry: registryRef });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
