// Test certificates made with openssl at setup: a CA with a server certificate for 127.0.0.1
// (IP SAN) for the registry's TLS, and a self-signed signing certificate for the token server,
// which the registry trusts through `auth.token.rootcertbundle`.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsFiles {
  caPem: string;
  caCertPath: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface SigningFiles {
  certPath: string;
  certPem: string;
  keyPem: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A CA and a server certificate valid for 127.0.0.1 only (so `localhost` is a hostname mismatch). */
export async function makeServerTls(dir: string, opts: { days?: number } = {}): Promise<TlsFiles> {
  const days = String(opts.days ?? 2);
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', days,
    '-subj', '/CN=fleet-cleanup test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt',
    '-days', days, '-extfile', 'server.ext']);
  return {
    caPem: await readFile(join(dir, 'ca.crt'), 'utf8'),
    caCertPath: join(dir, 'ca.crt'),
    certPath: join(dir, 'server.crt'),
    keyPath: join(dir, 'server.key'),
    certPem: await readFile(join(dir, 'server.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'server.key'), 'utf8'),
  };
}

/** The token server's RS256 signing key and its self-signed certificate (sent in the JWT's x5c). */
export async function makeSigningCert(dir: string): Promise<SigningFiles> {
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2',
    '-subj', '/CN=fleet-cleanup test token signer']);
  return {
    certPath: join(dir, 'token.crt'),
    certPem: await readFile(join(dir, 'token.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'token.key'), 'utf8'),
  };
}
