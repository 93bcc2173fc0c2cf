// On a Node.js older than 24 the built command says so in one line and exits 2, instead of
// crashing inside undici while loading (`Cannot read properties of undefined (reading 'bind')`
// on Node 20). Proven with the built dist/main.js (the bundle's entry chunk, as the image and
// the package ship it) under the machine's own older Node when it has one, and always under
// this Node 24 told it is 20.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../jobrunner/image.ts';

let OUT: string;

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
  beforeAll(async () => {
    const { image } = await buildImage();
    OUT = join(image.workingDir, 'dist');
  }, 120_000);

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
