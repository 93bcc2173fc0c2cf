// On a Node.js older than 24 the built command says so in one line and exits 2, instead of
// crashing inside undici while loading (`Cannot read properties of undefined (reading 'bind')`
// on Node 20). Proven with the built dist/main.js under the machine's own older Node when it
// has one, and always under this Node 24 told it is 20.
import { execFileSync, spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// Inside node_modules, so that the built files resolve the project's dependencies.
const OUT = join(ROOT, 'node_modules', '.cache', `fleet-cleanup-node-version-${process.pid}`);
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** A node binary on this machine older than 24 (the machine's own Node is 20 here). */
function olderNode(): { path: string; version: string } | undefined {
  const candidates = [...(process.env.PATH ?? '').split(':').map((d) => join(d, 'node')), '/usr/bin/node', '/usr/local/bin/node'];
  for (const path of new Set(candidates)) {
    const r = spawnSync(path, ['--version'], { encoding: 'utf8' });
    if (r.status === 0 && Number(/^v(\d+)/.exec(r.stdout)?.[1]) < 24) return { path, version: r.stdout.trim() };
  }
  return undefined;
}

describe('the Node.js version check of dist/main.js', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', OUT]);
  }, 120_000);
  afterAll(async () => {
    await rm(OUT, { recursive: true, force: true });
  });

  const old = olderNode();
  it.skipIf(!old)(`under the machine's ${old?.version ?? '(no Node older than 24 here)'}: one line, exit 2`, () => {
    const r = spawnSync(old!.path, [join(OUT, 'main.js'), '--help'], { encoding: 'utf8' });
    expect(r.stderr).toBe(`fleet-cleanup: error: Node.js 24 or newer is required; this is Node.js ${old!.version} (${old!.path})\n`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
  });

  it('under Node 24 told it is 20: the same line; untold, the command runs', () => {
    const pretend = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'20.20.2'});Object.defineProperty(process,'version',{value:'v20.20.2'})`;
    const told = spawnSync(process.execPath, ['--import', pretend, join(OUT, 'main.js'), '--help'], { encoding: 'utf8' });
    expect(told.stderr).toBe(`fleet-cleanup: error: Node.js 24 or newer is required; this is Node.js v20.20.2 (${process.execPath})\n`);
    expect(told.status).toBe(2);

    const real = spawnSync(process.execPath, [join(OUT, 'main.js'), '--help'], { encoding: 'utf8' });
    expect(real.stdout).toMatch(/^Usage: fleet-cleanup /);
    expect(real.status).toBe(0);
  });
});
