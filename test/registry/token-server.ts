// A Docker-registry token server for the tests (distribution's token auth, docs "Token
// Authentication Specification" and "Token Authentication Implementation"): checks Basic
// credentials, grants what is asked for, and signs an RS256 JWT whose header carries the
// signing certificate in x5c. Knobs let tests shorten lifetimes and hand out tokens the
// registry will refuse, and it counts requests.
import { createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface TokenServerOptions {
  username: string;
  password: string;
  issuer: string;
  service: string;
  signing: { certPem: string; keyPem: string };
  /** Serve https with this certificate (the registry's test CA). */
  tls?: { certPem: string; keyPem: string };
}

export interface TokenRequest {
  scopes: string[];
  /** The Basic user, or undefined for an anonymous request. */
  user: string | undefined;
  status: number;
}

export interface TokenServer {
  realm: string;
  requests: TokenRequest[];
  /** Every token handed out (tests assert none of them reaches a log line or an error). */
  issued: string[];
  /** expires_in and JWT lifetime of the next tokens (seconds). */
  ttlSeconds: number;
  /** The next `n` tokens carry an exp in the past (the registry refuses them) while advertising a normal lifetime. */
  expireNext(n: number): void;
  close(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const key: KeyObject = createPrivateKey(opts.signing.keyPem);
  const certDer = new X509Certificate(opts.signing.certPem).raw;
  let expiredToIssue = 0;
  const state: Omit<TokenServer, 'realm' | 'close'> = {
    requests: [],
    issued: [],
    ttlSeconds: 300,
    expireNext(n: number) {
      expiredToIssue = n;
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const user = basicUser(req.headers.authorization, opts);
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    if (user === null || user === undefined) {
      // Wrong credentials, or none: this test registry has no anonymous access.
      state.requests.push({ scopes, user: undefined, status: 401 });
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="token"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    state.requests.push({ scopes, user, status: 200 });
    const now = Math.floor(Date.now() / 1000);
    const expired = expiredToIssue > 0;
    if (expired) expiredToIssue--;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: opts.issuer,
      sub: user,
      aud: opts.service,
      // An "expired" token ran out well beyond any clock-skew leeway the registry allows.
      exp: expired ? now - 3600 : now + state.ttlSeconds,
      nbf: expired ? now - 7200 : now - 10,
      iat: expired ? now - 7200 : now,
      jti: randomUUID(),
      access: scopes.map(parseScope).filter((s) => s !== undefined),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), key);
    const token = `${signingInput}.${b64url(signature)}`;
    state.issued.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: state.ttlSeconds, issued_at: new Date(now * 1000).toISOString() }));
  };

  const server: Server = opts.tls ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handle) : createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    realm: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  }) as TokenServer;
}

/** The user when the Basic credentials match; null when they do not; undefined when absent. */
function basicUser(authorization: string | undefined, opts: TokenServerOptions): string | null | undefined {
  if (!authorization?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(authorization.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, colon);
  return user === opts.username && decoded.slice(colon + 1) === opts.password ? user : null;
}

/** `repository:fleet/s-abc:pull,delete` → `{type, name, actions}` (everything asked is granted). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}
