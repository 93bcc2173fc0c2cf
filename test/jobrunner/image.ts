// This project's image, as the Job runner runs it: the Dockerfile's ENTRYPOINT (node
// dist/main.js), WORKDIR, USER 65532:65532 and ENV, with this machine's Node 24.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadYaml } from '@kubernetes/client-node';
import type { LocalImage } from './kubelet.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The chart's default image as its template composes it (helm-hook/templates/_helpers.tpl
 * fleet-cleanup.image): values.yaml image.registry/image.repository, tag = Chart.yaml appVersion.
 */
export const CHART_IMAGE = (() => {
  const read = (f: string) => readFileSync(join(ROOT, 'helm-hook', f), 'utf8');
  const values = loadYaml(read('values.yaml')) as { image: { registry?: string; repository: string; tag?: string } };
  const { appVersion } = loadYaml(read('Chart.yaml')) as { appVersion: string };
  const repository = values.image.registry ? `${values.image.registry.replace(/\/$/, '')}/${values.image.repository}` : values.image.repository;
  return `${repository}:${values.image.tag || appVersion}`;
})();

/** The runtime stage's ENV (the Dockerfile; test/ship/dockerfile.test.ts holds the two equal). */
export const IMAGE_ENV: Readonly<Record<string, string>> = { NODE_ENV: 'production', MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=4' };

/** `dir` holds dist/ and package.json, as the image's /app does. */
export function localImage(dir: string): LocalImage {
  return { entrypoint: [process.execPath, join(dir, 'dist', 'main.js')], workingDir: dir, user: 65532, group: 65532, env: { ...IMAGE_ENV } };
}

/** The checkout's own `npm run build` output (the standalone server's --run-jobs). */
export function checkoutImage(): LocalImage {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  return localImage(ROOT);
}

const BUILD_INPUTS = ['rolldown.config.ts', 'tsconfig.json', 'package.json', 'package-lock.json'];

/** `npm run build` as arguments to rolldown's CLI: the image is built by exactly that command. */
function buildArgs(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } };
  const [command, ...args] = scripts.build.split(/\s+/);
  if (command !== 'rolldown') throw new Error(`package.json scripts.build: expected a rolldown command, got ${scripts.build}`);
  return [join(ROOT, 'node_modules', 'rolldown', 'bin', 'cli.mjs'), ...args];
}

/**
 * What the build depends on: every file under src/, the bundler's config, the tsconfig, and
 * package.json with the lockfile (the bundle inlines the dependencies' code).
 */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(join(ROOT, 'src'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  for (const f of [...files.sort(), ...BUILD_INPUTS.map((n) => join(ROOT, n))]) hash.update(f).update(await readFile(f));
  return hash.digest('hex').slice(0, 16);
}

/**
 * A private build of src/ (`npm run build`, into another dist/) under
 * node_modules/.cache/fleet-cleanup-image/<hash of the sources>, so tests never race the
 * package test's prepack rebuilding dist/, and test files share one build per source state.
 */
export async function buildImage(): Promise<{ image: LocalImage; dispose(): Promise<void> }> {
  const parent = join(ROOT, 'node_modules', '.cache', 'fleet-cleanup-image');
  await mkdir(parent, { recursive: true });
  const dir = join(parent, await sourceHash());
  if (!existsSync(join(dir, 'package.json'))) {
    const tmp = await mkdtemp(join(parent, 'build-'));
    await chmod(tmp, 0o755); // the container runs as 65532
    await promisify(execFile)(process.execPath, [...buildArgs(), '--dir', join(tmp, 'dist')], { cwd: ROOT });
    await copyFile(join(ROOT, 'package.json'), join(tmp, 'package.json'));
    // complete builds only, atomically; a parallel worker that got there first wins
    await rename(tmp, dir).catch(() => rm(tmp, { recursive: true, force: true }));
    for (const old of await readdir(parent)) if (old !== basename(dir) && !old.startsWith('build-')) await rm(join(parent, old), { recursive: true, force: true });
  }
  return { image: localImage(dir), dispose: async () => {} };
}
