// No container engine runs here, so the image is checked by reading its Dockerfile: the
// runtime stage must hold what package.test.ts proves enough (dist/, package.json, production
// dependencies) and nothing else, run as a non-root numeric user, and start the package's bin.
// The k3s suite builds and runs the image where an engine exists.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IMAGE_ENV } from '../jobrunner/image.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  name: string | undefined;
  image: string;
  steps: Instruction[];
}

/** Instructions with line continuations joined and comments dropped; ARG defaults substituted into FROM. */
function parseDockerfile(text: string): Stage[] {
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { op: op.toUpperCase(), args: rest };
    if (instruction.op === 'FROM') {
      const [, image = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest) ?? [];
      stages.push({ name, image: image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => args.get((a ?? b)!) ?? ''), steps: [] });
    } else if (instruction.op === 'ARG' && stages.length === 0) {
      const [, key = '', value = ''] = /^(\w+)(?:=(.*))?$/.exec(rest) ?? [];
      args.set(key, value);
    } else {
      stages.at(-1)?.steps.push(instruction);
    }
  }
  return stages;
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

function copies(stage: Stage): Copy[] {
  return stage.steps
    .filter((s) => s.op === 'COPY' || s.op === 'ADD')
    .map((s) => {
      const words = s.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
    });
}

const runs = (stage: Stage) => stage.steps.filter((s) => s.op === 'RUN').map((s) => s.args);
const norm = (path: string) => path.replace(/^\.\//, '').replace(/\/+$/, '');

/** .dockerignore semantics enough for this repo: `*`, `**`, `?`, `!` exceptions, last match wins, a match on a parent excludes the child. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegex = (glob: string) =>
    new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`);
  const parts = norm(path).split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegex(norm(negate ? raw.slice(1) : raw));
    if (prefixes.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

const dockerfile = parseDockerfile(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const runtime = dockerfile.at(-1)!;
const stage = (name: string | undefined) => dockerfile.find((s) => s.name === name);

describe('Dockerfile', () => {
  it('runs on a minimal Node 24 image', () => {
    expect(runtime.image).toMatch(/^(gcr\.io\/distroless\/nodejs24-debian1\d(:[\w.-]+)?|node:24[\w.-]*-alpine[\w.]*)$/);
  });

  it('builds dist/ with the full toolchain and installs production dependencies from the lockfile', () => {
    const [deps, dist] = [copies(runtime).find((c) => norm(c.dest).endsWith('node_modules')), copies(runtime).find((c) => norm(c.dest).endsWith('dist'))];
    expect(deps?.from, 'node_modules comes from a build stage').toBeDefined();
    expect(dist?.from, 'dist/ comes from a build stage').toBeDefined();
    expect(runs(stage(deps!.from)!)).toContainEqual(expect.stringMatching(/^npm ci\b.*--omit=dev\b/));
    expect(runs(stage(dist!.from)!)).toEqual(expect.arrayContaining([expect.stringMatching(/^npm ci\b/), 'npm run build']));
    expect(runs(stage(dist!.from)!).some((r) => r.includes('--omit=dev'))).toBe(false);
  });

  it('the runtime stage holds only dist/, package.json and production node_modules, and runs nothing', () => {
    const copied = copies(runtime).flatMap((c) => c.sources.map((s) => ({ from: c.from, source: norm(s) })));
    const fromContext = copied.filter((c) => c.from === undefined).map((c) => c.source);
    const fromStages = copied.filter((c) => c.from !== undefined).map((c) => c.source.replace(/^\/src\//, ''));
    expect(fromContext).toEqual(['package.json']);
    expect(fromStages.sort()).toEqual(['dist', 'node_modules']);
    // dist/ is what package.json ships; README is documentation, not needed to run.
    expect(pkg.files.map(norm)).toContain('dist');
    expect(runs(runtime)).toEqual([]);
  });

  it('runs as a numeric non-root user and starts the package bin', () => {
    const users = runtime.steps.filter((s) => s.op === 'USER').map((s) => s.args);
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.split(':');
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
    const workdir = runtime.steps.filter((s) => s.op === 'WORKDIR').at(-1)?.args;
    const entrypoint = JSON.parse(runtime.steps.find((s) => s.op === 'ENTRYPOINT')!.args) as string[];
    expect(entrypoint.at(-1)).toBe(join(workdir!, pkg.bin['fleet-cleanup']!));
    expect(entrypoint[0]).toMatch(/(^|\/)node(js\/bin\/node)?$/);
  });

  it('the Job runner runs the image with exactly the runtime stage\'s ENV', () => {
    // `ENV K=V` (one or more pairs) or the legacy `ENV K V`.
    const env = Object.fromEntries(runtime.steps.filter((s) => s.op === 'ENV').flatMap((s) =>
      s.args.includes('=') ? [...s.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]) : [s.args.split(/\s+/, 2) as [string, string]]));
    expect(env).toEqual(IMAGE_ENV);
  });

  it('its build context (.dockerignore) lets in every file the build copies, and never node_modules or dist', () => {
    const contextSources = dockerfile.flatMap((s) => copies(s).filter((c) => c.from === undefined).flatMap((c) => c.sources));
    expect(contextSources.length).toBeGreaterThan(0);
    for (const source of contextSources) expect(dockerIgnored(ignore, source), source).toBe(false);
    for (const local of ['node_modules', 'node_modules/pino/package.json', 'dist/main.js', '.git/config', 'test/ship/package.test.ts']) {
      expect(dockerIgnored(ignore, local), local).toBe(true);
    }
  });
});
