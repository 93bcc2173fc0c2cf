import { messageOf, oneLine } from '../../error-text.ts';
// One error type for everything the registry client can run into, each with a single line a
// person can act on. Messages name the registry (reference) and repository, never a credential
// or a token: a registry's own words (error bodies) may echo them, so every message is scrubbed
// of the credentials this process holds and of anything shaped like an Authorization value.

/** Passwords, `user:password` (plain and base64) and tokens in use: never in an error's words. */
const knownCredentials = new Set<string>();
const MAX_KNOWN = 10_000;

/** Remembers a credential so that no RegistryError message carries it. */
export function rememberCredential(value: string | undefined): void {
  if (!value) return;
  if (knownCredentials.size >= MAX_KNOWN) knownCredentials.delete(knownCredentials.values().next().value!);
  knownCredentials.add(value);
}

const REDACTED = '[redacted]';

/** `text` without any known credential, Authorization value (Basic/Bearer), token field or JWT. */
export function scrubCredentials(text: string): string {
  let out = text
    .replace(/\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`)
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, REDACTED)
    .replace(/\b((?:access_|refresh_)?token"?\s*[:=]\s*"?)[^"\s,;&]+/gi, `$1${REDACTED}`);
  // Longest first: `user:password` goes whole before `password` alone.
  for (const secret of [...knownCredentials].sort((a, b) => b.length - a.length)) out = out.split(secret).join(REDACTED);
  return out;
}

export type RegistryErrorKind =
  | 'unauthorized'
  | 'forbidden'
  | 'delete-disabled'
  | 'tls'
  | 'unreachable'
  | 'timeout'
  | 'not-found'
  | 'server'
  | 'protocol'
  | 'unsupported';

export interface RegistryErrorInit {
  status?: number;
  /** The connection's reference (host[:port]/prefix). */
  registry: string;
  /** Full repository path when the failure is about one. */
  repository?: string;
  /** Transport error code (ECONNREFUSED, CERT_HAS_EXPIRED, ...). */
  code?: string;
  retryAfterMs?: number;
}

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly kind: RegistryErrorKind;
  readonly status: number | undefined;
  readonly registry: string;
  readonly repository: string | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(kind: RegistryErrorKind, message: string, init: RegistryErrorInit) {
    super(oneLine(scrubCredentials(message), 400));
    this.kind = kind;
    this.status = init.status;
    this.registry = init.registry;
    this.repository = init.repository;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Transient: worth another attempt after a backoff. */
  get retryable(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || (this.kind === 'server' && this.status !== 501);
  }
}

/** Node / OpenSSL certificate error codes, in the words an operator knows. */
const TLS_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in a self-signed CA that is not trusted (unknown CA)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is signed by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is signed by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is signed by an unknown CA',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not match the host name (hostname mismatch)',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  CERT_REVOKED: 'the certificate is revoked',
  CERT_UNTRUSTED: 'the certificate is not trusted',
  INVALID_CA: 'an issuing CA certificate is invalid',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the server does not speak TLS (a plain http registry needs basicHTTP: "true")',
  EPROTO: 'the TLS handshake failed (a plain http registry needs basicHTTP: "true")',
};

export function tlsProblem(code: string | undefined): string | undefined {
  if (!code) return undefined;
  if (TLS_PROBLEMS[code]) return TLS_PROBLEMS[code];
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS failure (${code})`;
  return undefined;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

const UNREACHABLE_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed temporarily',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
  UND_ERR_CLOSED: 'connection closed',
};

/** The code of a transport failure, looking through undici's and fetch's wrappers. */
export function transportCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const o = e as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof o.code === 'string') return o.code;
    if (o.name === 'TimeoutError') return 'ETIMEDOUT';
    e = o.cause;
  }
  return undefined;
}

/**
 * Turns a thrown transport error into a RegistryError naming `origin` (host:port). `what`
 * says which request, e.g. `GET /v2/` or `token request to https://auth/token`.
 */
export function fromTransportError(err: unknown, ctx: { registry: string; origin: string; what: string; repository?: string; timeoutMs: number }): RegistryError {
  if (err instanceof RegistryError) return err;
  const code = transportCode(err);
  const base = { registry: ctx.registry, ...(ctx.repository ? { repository: ctx.repository } : {}), ...(code ? { code } : {}) };
  const tls = tlsProblem(code);
  if (tls) return new RegistryError('tls', `registry ${ctx.registry}: TLS error connecting to ${ctx.origin}: ${tls} [${code}] (trust its CA with "cacerts", or set insecureSkipTLS)`, base);
  if (code && TIMEOUT_CODES.has(code)) return new RegistryError('timeout', `registry ${ctx.registry}: ${ctx.what} to ${ctx.origin} timed out after ${ctx.timeoutMs} ms`, base);
  if (code && UNREACHABLE_CODES.has(code)) {
    return new RegistryError('unreachable', `registry ${ctx.registry} is unreachable: ${UNREACHABLE_WORDS[code] ?? code} at ${ctx.origin} [${code}]`, base);
  }
  const detail = messageOf(err);
  return new RegistryError('unreachable', `registry ${ctx.registry}: ${ctx.what} to ${ctx.origin} failed: ${detail}${code ? ` [${code}]` : ''}`, base);
}

/** The registry's own error codes from an OCI error body, e.g. `UNSUPPORTED: The operation is unsupported.` */
export function registryErrorDetail(body: Buffer | undefined): string {
  if (!body || body.length === 0) return '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (!Array.isArray(parsed.errors)) return '';
    return oneLine(
      parsed.errors
        .map((e) => [typeof e.code === 'string' ? e.code : '', typeof e.message === 'string' ? e.message : ''].filter(Boolean).join(': '))
        .filter(Boolean)
        .join('; '),
      200,
    );
  } catch {
    return '';
  }
}
