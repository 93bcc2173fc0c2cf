// Fleet's OCI storage connection Secret (fleet-reference §2), parsed into what the registry
// client needs. Error messages name the Secret and the key, never a value: several keys hold
// credentials and the rest are not worth the risk of a copy-paste mistake either.
import { createHash, X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { parseGoBool } from '../go-compat.ts';
import { referenceProblem } from './rules.ts';

export { isContentsId, OCI_STORAGE_SECRET_TYPE } from './rules.ts';

export interface RegistryConnection {
  /** host[:port]/path prefix, no scheme, as written in the Secret (trailing slashes dropped). */
  reference: string;
  /** host[:port] */
  host: string;
  /** Path part of `reference` without leading/trailing slash; '' when none. */
  pathPrefix: string;
  /** Write credentials (`username`/`password`); the agent* read-only pair is never used here. */
  username?: string;
  password?: string;
  /** Plain http instead of https. */
  basicHTTP: boolean;
  /** Skip TLS verification (`insecureSkipTLS`, legacy alias `insecure`). */
  insecureSkipTLS: boolean;
  /** PEM bundle trusted in addition to the system roots. */
  cacerts?: string;
}

export class StorageSecretError extends Error {
  override readonly name = 'StorageSecretError';
  /** `namespace/name` of the Secret. */
  readonly secret: string;
  /** The key at fault (undefined when the Secret as a whole is at fault). */
  readonly key: string | undefined;
  constructor(secret: string, key: string | undefined, problem: string) {
    super(`OCI storage secret ${secret}: ${key ? `key "${key}" ` : ''}${problem}`);
    this.secret = secret;
    this.key = key;
  }
}

export function parseStorageSecret(secret: V1Secret): RegistryConnection {
  const id = `${secret.metadata?.namespace ?? '(no namespace)'}/${secret.metadata?.name ?? '(no name)'}`;
  const data = secret.data ?? {};
  const fail = (key: string | undefined, problem: string): never => {
    throw new StorageSecretError(id, key, problem);
  };

  const text = (key: string): string | undefined => {
    const raw = data[key];
    if (raw === undefined || raw === null) return undefined;
    // Kubernetes serves `data` as base64; a value that does not round-trip is not base64.
    const buf = Buffer.from(raw, 'base64');
    if (buf.toString('base64').replace(/=+$/, '') !== raw.replace(/\s+/g, '').replace(/=+$/, '')) {
      fail(key, 'is not valid base64');
    }
    return buf.toString('utf8');
  };

  const bool = (key: string): boolean | undefined => {
    const value = text(key);
    // An empty value means "not set", as Fleet treats it: false.
    if (value === undefined || value.trim() === '') return undefined;
    const parsed = parseGoBool(value.trim());
    if (parsed === undefined) fail(key, 'is not a boolean (expected one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)');
    return parsed;
  };

  const rawReference = text('reference')?.trim() ?? '';
  const problem = referenceProblem(rawReference);
  if (problem) fail('reference', problem);
  const reference = rawReference.replace(/\/+$/, '');
  const slash = reference.indexOf('/');
  const host = slash < 0 ? reference : reference.slice(0, slash);
  const pathPrefix = slash < 0 ? '' : reference.slice(slash + 1);

  const username = text('username');
  const password = text('password');
  if (username && password === undefined) fail('password', 'is missing while "username" is set');

  const basicHTTP = bool('basicHTTP') ?? false;
  // `insecure` is the legacy spelling; the current key wins when both are present.
  const insecureSkipTLS = bool('insecureSkipTLS') ?? bool('insecure') ?? false;

  const cacerts = text('cacerts');
  if (cacerts !== undefined && cacerts.trim() !== '') checkPem(cacerts, (problem) => fail('cacerts', problem));

  const conn: RegistryConnection = { reference, host, pathPrefix, basicHTTP, insecureSkipTLS };
  if (username) conn.username = username;
  if (username && password !== undefined) conn.password = password;
  if (cacerts !== undefined && cacerts.trim() !== '') conn.cacerts = cacerts;
  return conn;
}

function checkPem(pem: string, fail: (problem: string) => never): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) fail('is not a PEM certificate bundle (no BEGIN CERTIFICATE block)');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      fail(`certificate #${i + 1} in the PEM bundle does not parse`);
    }
  });
}

/**
 * Groups connections that reach the same registry, prefix and identity: a short hash, so it
 * can be used as a map key without carrying the credentials around. It is deterministic
 * (same input, same key across runs), so treat it as an in-memory grouping key, not as
 * something to print next to a weak password's other inputs.
 */
export function registryKey(conn: RegistryConnection): string {
  const material = JSON.stringify([
    conn.basicHTTP ? 'http' : 'https',
    conn.host.toLowerCase(),
    conn.pathPrefix,
    conn.username ?? '',
    conn.password ?? '',
    conn.insecureSkipTLS,
    conn.cacerts ?? '',
  ]);
  return `reg-${createHash('sha256').update(material).digest('hex').slice(0, 24)}`;
}
