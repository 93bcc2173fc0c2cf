// A real CNCF distribution registry (`docker-registry serve`) for the tests: filesystem storage
// in a temp dir, a free loopback port, optional htpasswd or token auth, optional TLS with a test
// CA, deletes on or off. Every process started here is stopped by stop()/dispose(), and as a
// last resort when the test process exits or gets SIGINT/SIGTERM.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
  /** The running registry's process id (the benchmark reads its CPU time). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** Starts again on the same port and storage. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
const killLive = () => {
  for (const p of live) p.kill('SIGKILL');
};
// A crashed or interrupted test must not leave registries running.
process.once('exit', killLive);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killLive();
    // Ours was the only handler: do what the signal would have done without it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

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

/** Spawn attempts: another test worker may take a port between freePort() and the registry's bind. */
const BIND_ATTEMPTS = 5;
const ADDRESS_IN_USE = /address already in use/i;

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-registry-'));
  const username = auth === 'none' ? undefined : 'fleet';
  const password = auth === 'none' ? undefined : `pw-${randomBytes(9).toString('base64url')}`;

  let tls: TlsFiles | undefined;
  let tokenServer: TokenServer | undefined;
  // The config without http.addr, which is added for the port of each spawn attempt.
  let config: { before: string[]; after: string[] };
  try {
    if (opts.tls) tls = await makeServerTls(dir);
    const before = ['version: 0.1', 'log:', '  level: info', '  formatter: text', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:', `    enabled: ${opts.deleteEnabled ?? true}`, '  maintenance:', '    uploadpurging:', '      enabled: false',
      'http:', `  secret: ${randomBytes(16).toString('hex')}`];
    if (tls) before.push('  tls:', `    certificate: ${tls.certPath}`, `    key: ${tls.keyPath}`);
    const after: string[] = [];
    if (auth === 'htpasswd') {
      const { stdout } = await exec('htpasswd', ['-Bbn', username!, password!]);
      await writeFile(join(dir, 'htpasswd'), stdout);
      after.push('auth:', '  htpasswd:', '    realm: fleet-cleanup-test', `    path: ${join(dir, 'htpasswd')}`);
    }
    if (auth === 'token') {
      const signing = await makeSigningCert(dir);
      tokenServer = await startTokenServer({
        username: username!, password: password!, issuer: 'fleet-cleanup-test-issuer', service: 'fleet-cleanup-test-registry', signing,
        ...(tls ? { tls: { certPem: tls.certPem, keyPem: tls.keyPem } } : {}),
      });
      after.push('auth:', '  token:', `    realm: ${tokenServer.realm}`, '    service: fleet-cleanup-test-registry',
        '    issuer: fleet-cleanup-test-issuer', `    rootcertbundle: ${signing.certPath}`);
    }
    config = { before, after };
  } catch (err) {
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const accessLog: string[] = [];
  let proc: ChildProcess | undefined;
  let host = '';

  /** One registry process on `port`: resolves when it answers, 'in use' when it could not bind. */
  const spawnOn = async (port: number): Promise<'ready' | 'in use'> => {
    const addr = `127.0.0.1:${port}`;
    await writeFile(join(dir, 'config.yml'), `${[...config.before, `  addr: ${addr}`, ...config.after].join('\n')}\n`);
    let stderrTail = '';
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
    let exited = false;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      if (proc === child) proc = undefined;
    });
    const tail = () => stderrTail.trim().split('\n').slice(-5).join(' | ');
    try {
      await waitReady(addr, tls?.caPem, accessLog, () => exited);
      return 'ready';
    } catch (err) {
      if (!exited) {
        child.kill('SIGKILL');
        throw new Error(`docker-registry on ${addr} did not answer within 15 s: ${tail()}`, { cause: err });
      }
      // Wait for stderr to be read to its end: the bind error is the process's last word.
      await closed;
      if (ADDRESS_IN_USE.test(stderrTail)) return 'in use';
      throw new Error(`docker-registry exited during startup: ${tail()}`);
    }
  };

  /** The first start picks a free port, a new one when it was taken meanwhile; a restart keeps its port. */
  const start = async (): Promise<void> => {
    if (proc) return;
    const restart = host !== '';
    for (let attempt = 1; ; attempt++) {
      const port = restart ? Number(host.split(':')[1]) : await freePort();
      if ((await spawnOn(port)) === 'ready') {
        host = `127.0.0.1:${port}`;
        return;
      }
      if (attempt === BIND_ATTEMPTS) throw new Error(`docker-registry could not bind ${restart ? host : 'a free port'} in ${BIND_ATTEMPTS} attempts: address already in use`);
      if (restart) await sleep(200 * attempt);
    }
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
      const deadline = Date.now() + 5000;
      if (!(await synced(host, tls?.caPem, accessLog, () => Date.now() > deadline))) throw new Error(`the registry did not answer a marker request, or its access log did not show it`);
      return accessLog.filter((l) => !l.includes('/v2/?sync='));
    },
    get pid() {
      return proc?.pid;
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

/**
 * Sends `GET /v2/?sync=<nonce>` and waits until this registry's access log shows it: true then;
 * false when nothing answered as a registry, or `gaveUp()` (the process exited, a deadline).
 * The log line tells this registry from any other server on the port, even another registry.
 */
async function synced(host: string, caPem: string | undefined, accessLog: string[], gaveUp: () => boolean): Promise<boolean> {
  const nonce = randomBytes(8).toString('hex');
  if (!(await answersAsRegistry(host, caPem, `/v2/?sync=${nonce}`))) return false;
  while (!accessLog.some((l) => l.includes(nonce))) {
    if (gaveUp()) return false;
    await sleep(5);
  }
  return true;
}

/** Polls until this registry answers; throws when `exited()` or after 15 s. */
async function waitReady(host: string, caPem: string | undefined, accessLog: string[], exited: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  const gaveUp = () => exited() || Date.now() > deadline;
  while (!(await synced(host, caPem, accessLog, gaveUp))) {
    if (exited()) throw new Error('docker-registry exited during startup');
    if (Date.now() > deadline) throw new Error(`no answer from docker-registry on ${host}`);
    await sleep(50);
  }
}

/** Any answer (200, 401, ...) carrying the distribution API header: some registry serves `host`. */
function answersAsRegistry(host: string, caPem: string | undefined, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const [hostname, port] = host.split(':');
    const options = { hostname, port: Number(port), path, method: 'GET', timeout: 1000, ...(caPem ? { ca: caPem } : {}) };
    const req = (caPem ? httpsRequest : httpRequest)(options, (res) => {
      res.resume();
      resolve(res.headers['docker-distribution-api-version'] === 'registry/2.0');
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
