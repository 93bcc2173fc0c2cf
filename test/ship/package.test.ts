// What the image does, without a container engine: pack the package, install the tarball with
// production dependencies only into an empty directory, and run its `fleet-cleanup` bin. A
// runtime import of a devDependency, or a file the package forgets to ship, fails here as it
// would in the image (whose runtime stage holds exactly dist/, package.json and the
// production node_modules: see dockerfile.test.ts).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';
import { FLAGS } from '../../src/cli/options.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

const execFileAsync = promisify(execFile);

/** Asynchronous, so the in-process API test server keeps answering the child. */
async function run(command: string, args: string[], options: { cwd: string }): Promise<Ran> {
  // This Node first on PATH: npm's scripts and the bin's `#!/usr/bin/env node` use Node 24.
  // The machine's environment as it is (it may carry what reaches the npm registry: a CA bundle
  // in NODE_EXTRA_CA_CERTS, proxies), less the variables of the `npm test` around us, which would
  // steer the child npm. No update check: on a fresh HOME npm would ask the registry for itself.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
  const env = { ...inherited, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' };
  try {
    // A step that hangs fails on its own, naming itself, well inside the hook's timeout.
    const { stdout, stderr } = await execFileAsync(command, args, { cwd: options.cwd, env, maxBuffer: 64 << 20, timeout: 150_000, killSignal: 'SIGKILL' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: unknown; killed?: boolean; stdout?: string; stderr?: string };
    if (failed.killed) return { code: null, stdout: failed.stdout ?? '', stderr: `${failed.stderr ?? ''}\n(killed after 150 s: ${command} ${args.join(' ')})` };
    if (typeof failed.code !== 'number') throw err;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const ok = (what: string, r: Ran): Ran => {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  return r;
};

let work: string;
let bin: string;
let installed: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'fleet-cleanup-ship-'));
  const packed = ok('npm pack', await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT }));
  // The JSON array starts on a line of its own, after whatever the prepack script printed.
  const manifest = JSON.parse(packed.stdout.slice(packed.stdout.search(/^\[/m))) as Array<{ filename: string }>;
  const tarball = join(work, manifest[0]!.filename);
  installed = join(work, 'install');
  await mkdir(installed);
  // --prefer-offline: the cache `npm ci` filled serves the dependencies without a round trip.
  ok('npm install', await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: installed }));
  bin = join(installed, 'node_modules', '.bin', 'fleet-cleanup');
}, 360_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed package, installed with production dependencies only', () => {
  it('ships dist/ and no sources, tests or dev dependencies', async () => {
    const root = join(installed, 'node_modules', pkg.name);
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    const listing = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1)).filter((f) => !f.startsWith('node_modules/'));
    expect(listing).toContain('dist/main.js');
    expect(listing).toContain('package.json');
    expect(listing.filter((f) => !f.startsWith('dist/') && f !== 'package.json' && f !== 'README.md')).toEqual([]);
    const modules = await readdir(join(installed, 'node_modules'));
    for (const dev of ['vitest', 'typescript', '@testcontainers', 'testcontainers']) expect(modules).not.toContain(dev);
  });

  it('--help exits 0 and lists every flag', async () => {
    const help = await run(bin, ['--help'], { cwd: installed });
    expect(help.code).toBe(0);
    for (const spec of FLAGS) expect(help.stdout).toContain(`--${spec.flag}`);
  });

  it('--version prints the package version', async () => {
    const version = await run(bin, ['--version'], { cwd: installed });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(`fleet-cleanup ${pkg.version}`);
  });

  describe('against the API test server', () => {
    let server: TestApiServer;
    beforeAll(async () => {
      server = await startApiServer();
    });
    afterAll(async () => {
      await server?.close();
    });

    it('--dry-run exits 0, says what it would delete, and deletes nothing', async () => {
      const kc = kubeConfigFromYaml(server.kubeconfig());
      const seeder = new FleetSeeder(kc);
      await installFleetCrds(kc);
      await seeder.namespace('fleet-local');
      await seeder.namespace('cattle-fleet-system');
      const repo = await seeder.gitRepo('fleet-local', 'app');
      const { job } = await seeder.gitJob(repo, { state: 'succeeded', finishedAt: new Date(Date.now() - 2 * 3_600_000), withPod: false });
      const kubeconfig = join(work, 'kubeconfig');
      await server.writeKubeconfig(kubeconfig);

      const dry = await run(bin, ['--dry-run', '--kubeconfig', kubeconfig, '--namespace', 'cattle-fleet-system', '--run-key', 'ship'], { cwd: installed });
      expect(dry.code, dry.stderr).toBe(0);
      const audits = dry.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
      expect(audits).toEqual([expect.objectContaining({ action: 'would-delete', kind: 'Job', namespace: 'fleet-local', name: job.metadata?.name })]);

      const jobs = await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: 'fleet-local' });
      expect(jobs.items.map((j) => j.metadata?.name)).toEqual([job.metadata?.name]);
      const configMaps = await kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'cattle-fleet-system' });
      expect(configMaps.items.map((c) => c.metadata?.name)).not.toContain('fleet-cleanup');
    });

    it('--log-format text prints readable lines and the plan table (pino-pretty, loaded from the production install)', async () => {
      // The state the dry run above left as it found it: one old succeeded GitRepo Job.
      const kubeconfig = join(work, 'kubeconfig');
      const text = await run(bin, ['--dry-run', '--log-format', 'text', '--kubeconfig', kubeconfig, '--namespace', 'cattle-fleet-system', '--run-key', 'ship'], { cwd: installed });
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.split('\n').filter(Boolean);
      expect(lines.some((l) => l.startsWith('{'))).toBe(false);
      expect(lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\] INFO: run finished \{"status":"completed"/));
      // In text the dry run's plan is a table rather than one audit line per deletion.
      expect(lines).toContainEqual(expect.stringMatching(/^Job +fleet-local +app-\w+ +succeeded 2h ago/));
    });
  });
});
