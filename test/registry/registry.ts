// A real CNCF distribution registry (`docker-registry serve`) for the tests: filesystem storage
// in a temp dir, a free loopback port, optional htpasswd or token auth, optional TLS with a test
// CA, deletes on or off. Every process started here is stopped by stop()/dispose(), and as a
// last resort when the test process exits.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RegistryConnection } from '../../src/oci/storage-secret.ts';
import { makeServerTls, makeSigningCert, type TlsFiles } from './pki.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';

const exec = promisify(execFile);

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  tls?: boolean;
  /** storage.delete.enabled; default true. */
  deleteEnabled?: boolean;
}

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  /** `host/prefix`, as a Fleet secret's `reference` would say it. */
  reference(prefix: string): string;
  caPem?: string;
  /** Directory with ca.crt, usable as skopeo's --dest-cert-dir. */
  certDir?: string;
  username?: string;
  password?: string;
  tokenServer?: TokenServer;
  /** The connection Fleet would use for `prefix` (credentials and CA included). */
  connection(prefix: string): RegistryConnection;
  /**
   * Access-log lines so far, as `METHOD /path?query STATUS`. The log arrives on the registry's
   * stdout after each answer, so this first sends a marker request and waits for its line.
   */
  requests(): Promise<string[]>;
  stop(): Promise<void>;
  /** Starts again on the same port and storage. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
// A crashed test must not leave registries running.
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const username = auth === 'none' ? undefined : 'fleet';
  const password = auth === 'none' ? undefined : `pw-${randomBytes(9).toString('base64url')}`;

  let tls: TlsFiles | undefined;
  let tokenServer: TokenServer | undefined;
  try {
    if (opts.tls) tls = await makeServerTls(dir);
    const lines: string[] = ['version: 0.1', 'log:', '  level: info', '  formatter: text', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:', `    enabled: ${opts.deleteEnabled ?? true}`, '  maintenance:', '    uploadpurging:', '      enabled: false',
      'http:', `  addr: ${host}`, `  secret: ${randomBytes(16).toString('hex')}`];
    if (tls) lines.push('  tls:', `    certificate: ${tls.certPath}`, `    key: ${tls.keyPath}`);
    if (auth === 'htpasswd') {
      const { stdout } = await exec('htpasswd', ['-Bbn', username!, password!]);
      await writeFile(join(dir, 'htpasswd'), stdout);
      lines.push('auth:', '  htpasswd:', '    realm: fleet-cleanup-test', `    path: ${join(dir, 'htpasswd')}`);
    }
    if (auth === 'token') {
      const signing = await makeSigningCert(dir);
      tokenServer = await startTokenServer({
        username: username!, password: password!, issuer: 'fleet-cleanup-test-issuer', service: 'fleet-cleanup-test-registry', signing,
        ...(tls ? { tls: { certPem: tls.certPem, keyPem: tls.keyPem } } : {}),
      });
      lines.push('auth:', '  token:', `    realm: ${tokenServer.realm}`, '    service: fleet-cleanup-test-registry',
        '    issuer: fleet-cleanup-test-issuer', `    rootcertbundle: ${signing.certPath}`);
    }
    await writeFile(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  } catch (err) {
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const accessLog: string[] = [];
  let proc: ChildProcess | undefined;
  let stderrTail = '';

  const start = async (): Promise<void> => {
    if (proc) return;
    stderrTail = '';
    const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = child;
    live.add(child);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      // Combined-format access log: 127.0.0.1 - - [date] "HEAD /v2/x/manifests/latest HTTP/1.1" 200 0 "" "agent"
      for (const m of chunk.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/g)) accessLog.push(`${m[1]} ${m[2]} ${m[3]}`);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
    });
    child.once('exit', () => {
      live.delete(child);
      if (proc === child) proc = undefined;
    });
    await waitReady(host, tls?.caPem, () => proc === child, () => stderrTail);
  };

  const stop = async (): Promise<void> => {
    const child = proc;
    if (!child) return;
    proc = undefined;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    await stop();
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const reference = (prefix: string): string => (prefix ? `${host}/${prefix}` : host);
  const result: TestRegistry = {
    host,
    reference,
    connection(prefix: string): RegistryConnection {
      return {
        reference: reference(prefix), host, pathPrefix: prefix,
        basicHTTP: !tls, insecureSkipTLS: false,
        ...(username ? { username, password: password! } : {}),
        ...(tls ? { cacerts: tls.caPem } : {}),
      };
    },
    async requests() {
      const marker = randomBytes(8).toString('hex');
      await answers(host, tls?.caPem, `/v2/?sync=${marker}`);
      const deadline = Date.now() + 5000;
      while (!accessLog.some((l) => l.includes(marker))) {
        if (Date.now() > deadline) throw new Error(`the registry's access log did not show the marker request`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return accessLog.filter((l) => !l.includes('/v2/?sync='));
    },
    stop,
    start,
    async dispose() {
      await stop();
      await tokenServer?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (tls) Object.assign(result, { caPem: tls.caPem, certDir: await certDirFor(dir, tls) });
  if (username) Object.assign(result, { username, password });
  if (tokenServer) result.tokenServer = tokenServer;
  return result;
}

/** skopeo's --dest-cert-dir wants a directory holding only CA *.crt files. */
async function certDirFor(dir: string, tls: TlsFiles): Promise<string> {
  const certDir = join(dir, 'skopeo-certs');
  await exec('mkdir', ['-p', certDir]);
  await writeFile(join(certDir, 'ca.crt'), tls.caPem);
  return certDir;
}

/** Polls GET /v2/ until any HTTP answer (200 or 401), failing fast when the process died. */
async function waitReady(host: string, caPem: string | undefined, alive: () => boolean, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!alive()) throw new Error(`docker-registry exited during startup: ${stderr().trim().split('\n').slice(-5).join(' | ')}`);
    if (await answers(host, caPem)) return;
    if (Date.now() > deadline) throw new Error(`docker-registry on ${host} did not answer within 15 s: ${stderr().trim().split('\n').slice(-5).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function answers(host: string, caPem: string | undefined, path = '/v2/'): Promise<boolean> {
  return new Promise((resolve) => {
    const [hostname, port] = host.split(':');
    const options = { hostname, port: Number(port), path, method: 'GET', timeout: 1000, ...(caPem ? { ca: caPem } : {}) };
    const req = (caPem ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
