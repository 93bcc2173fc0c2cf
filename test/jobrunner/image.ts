// This project's image, as the Job runner runs it: the Dockerfile's ENTRYPOINT (node
// dist/main.js), WORKDIR, USER 65532:65532 and ENV, with this machine's Node 24.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LocalImage } from './kubelet.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The chart's default image: helm-hook/values.yaml image.repository, tag = Chart.yaml appVersion. */
export const CHART_IMAGE = (() => {
  const read = (f: string) => readFileSync(join(ROOT, 'helm-hook', f), 'utf8');
  const repository = /^\s+repository: (\S+)/m.exec(read('values.yaml'))![1]!;
  const appVersion = /^appVersion: "?([^"\s]+)"?/m.exec(read('Chart.yaml'))![1]!;
  return `${repository}:${appVersion}`;
})();

/** `dir` holds dist/ and package.json, as the image's /app does. */
export function localImage(dir: string): LocalImage {
  return { entrypoint: [process.execPath, join(dir, 'dist', 'main.js')], workingDir: dir, user: 65532, group: 65532, env: { NODE_ENV: 'production' } };
}

/** The checkout's own `npm run build` output (the standalone server's --run-jobs). */
export function checkoutImage(): LocalImage {
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run build` first');
  return localImage(ROOT);
}

/**
 * A private build of src/ (the same tsc and tsconfig.build.json as `npm run build`) under
 * node_modules/.cache, so tests never race the package test's prepack rebuilding dist/.
 */
export async function buildImage(): Promise<{ image: LocalImage; dispose(): Promise<void> }> {
  const parent = join(ROOT, 'node_modules', '.cache', 'fleet-cleanup-image');
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, 'build-'));
  await chmod(dir, 0o755); // the container runs as 65532
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: ROOT });
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
  return { image: localImage(dir), dispose: () => rm(dir, { recursive: true, force: true }) };
}
