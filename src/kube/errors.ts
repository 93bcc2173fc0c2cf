import { ApiException } from '@kubernetes/client-node';
import { oneLine } from '../error-text.ts';

/** What a request was about, so that every error line names the object and the verb. */
export interface KubeOp {
  verb: string;
  /** `resource.group` as kubectl prints it, e.g. `jobs.batch`, `secrets`, `bundles.fleet.cattle.io`. */
  resource: string;
  namespace?: string;
  name?: string;
}

export function describeOp(op: KubeOp): string {
  if (op.name) return `${op.verb} ${op.resource} ${op.namespace ? `${op.namespace}/` : ''}${op.name}`;
  return `${op.verb} ${op.resource} ${op.namespace ? `in namespace ${op.namespace}` : 'in all namespaces'}`;
}

/** A failed Kubernetes request, reduced to what a person needs: the operation, the code, the reason. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly op: KubeOp;
  /** HTTP status; undefined when no answer came (connection refused, reset, timeout). */
  readonly status: number | undefined;
  /** Status.reason (NotFound, Conflict, Expired, ...) or the transport error code. */
  readonly reason: string;
  readonly retryAfterSeconds: number | undefined;
  /** A 410 Expired answer carries a fresh continue token that resumes after the last key served. */
  readonly continueToken: string | undefined;
  /** The server's (or the socket's) own words, on one line. */
  readonly detail: string;
  /** Set when an earlier attempt of this request may have been applied (no answer, 500/502/504): a 404/409 may then answer our own attempt. */
  afterRetry = false;

  constructor(op: KubeOp, status: number | undefined, reason: string, detail: string, extra: { retryAfterSeconds?: number; continueToken?: string } = {}) {
    super(`${describeOp(op)}: ${status ? `${status} ` : ''}${reason}${detail ? `: ${detail}` : ''}`);
    this.op = op;
    this.detail = detail;
    this.status = status;
    this.reason = reason;
    this.retryAfterSeconds = extra.retryAfterSeconds;
    this.continueToken = extra.continueToken;
  }

  /** The same failure, saying how many attempts were made before giving up. */
  afterAttempts(attempts: number): KubeApiError {
    return new KubeApiError(this.op, this.status, this.reason, `${this.detail} (gave up after ${attempts} attempts)`.trim(), {
      ...(this.retryAfterSeconds !== undefined ? { retryAfterSeconds: this.retryAfterSeconds } : {}),
    });
  }
}

/** A queued request that was never sent because its caller's signal fired first. */
export class RequestAbandoned extends Error {
  override readonly name = 'RequestAbandoned';
  constructor(op: KubeOp) {
    super(`${describeOp(op)}: not sent: stopped before its turn`);
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown): boolean => isConflict(e) && (e as KubeApiError).reason === 'AlreadyExists';
export const isGone = (e: unknown): boolean => e instanceof KubeApiError && e.status === 410;
export const isForbidden = (e: unknown): boolean => e instanceof KubeApiError && e.status === 403;
export const isUnauthorized = (e: unknown): boolean => e instanceof KubeApiError && e.status === 401;

const REASON_BY_CODE: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'Conflict', 410: 'Gone', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError',
  502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout',
};

/** Turns whatever client-node or the network threw into a KubeApiError naming `op`. */
export function toKubeApiError(op: KubeOp, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    const status = parseStatusBody(err.body);
    const header = err.headers?.['retry-after'];
    const retryAfter = header !== undefined && /^\d+$/.test(header) ? Number(header) : status?.details?.retryAfterSeconds;
    return new KubeApiError(op, err.code, status?.reason || REASON_BY_CODE[err.code] || 'Error', scrubbed(status?.message ?? ''), {
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      ...(status?.metadata?.continue ? { continueToken: status.metadata.continue } : {}),
    });
  }
  const code = transportCode(err);
  return new KubeApiError(op, undefined, code, scrubbed(transportMessage(err)));
}

interface StatusBody {
  reason?: string;
  message?: string;
  details?: { retryAfterSeconds?: number };
  metadata?: { continue?: string };
}

function parseStatusBody(body: unknown): StatusBody | undefined {
  if (body && typeof body === 'object') return body as StatusBody;
  if (typeof body !== 'string' || body === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? (parsed as StatusBody) : undefined;
  } catch {
    return { message: body.slice(0, 200) };
  }
}

/** undici's fetch wraps socket errors as `TypeError: fetch failed` with the real one in `cause`. */
function rootCause(err: unknown): unknown {
  let e = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object' && 'cause' in e && (e as { cause?: unknown }).cause; depth++) {
    e = (e as { cause: unknown }).cause;
  }
  return e;
}

function transportCode(err: unknown): string {
  const cause = rootCause(err) as { code?: unknown; name?: unknown } | undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && (cause.name === 'TimeoutError' || cause.name === 'AbortError')) return 'Timeout';
  return 'RequestFailed';
}

function transportMessage(err: unknown): string {
  const cause = rootCause(err);
  if (cause instanceof Error) return cause.message;
  return String(cause);
}

/** One line, and never a URL's credentials. */
function scrubbed(text: string): string {
  return withoutUserinfo(oneLine(text));
}

/** undici quotes a URL with `user:password@` in its error; credentials never reach a log line. */
export function withoutUserinfo(text: string): string {
  // Up to the last `@` before the path: a password may itself contain `@`.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s]*@/gi, '$1');
}

/** Socket and timeout failures a retry may cure; anything else without an answer is a config error. */
const TRANSIENT_TRANSPORT = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'Timeout',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** Answers that a retry may cure: throttling, server trouble, and requests that never got an answer. */
export function isRetryable(err: KubeApiError): boolean {
  if (err.status === undefined) return TRANSIENT_TRANSPORT.has(err.reason);
  return err.status === 429 || err.status === 500 || err.status === 502 || err.status === 503 || err.status === 504;
}
