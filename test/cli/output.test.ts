// What a person at a terminal sees: readable log lines (pino-pretty) instead of JSON when stdout
// is a terminal, a dry run's plan as one table, `--log-format` to choose, and `--context` to
// pick a kubeconfig context as kubectl does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { cli } from '../../src/cli/cli.ts';
import { seedGitRepoJobs, useTestCluster } from './harness.ts';

const cluster = useTestCluster();

/** The command in this process with a stdout that says whether it is a terminal. */
async function run(args: string[], tty: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = Object.assign(new Writable({ write(chunk, _e, done) { stdout += String(chunk); done(); } }), { isTTY: tty });
  const code = await cli(args, { env: {}, stdout: out, stderr: { write: (t: string) => (stderr += t) }, podNamespace: () => undefined });
  return { code, stdout, stderr };
}

let n = 0;
async function scenario(succeeded: number) {
  n++;
  await cluster.seeder.namespace(`out-marker-${n}`);
  await seedGitRepoJobs(cluster.seeder, `out-jobs-${n}`, { succeeded }, 'webapp');
  return ['--kubeconfig', cluster.kubeconfigPath, '--namespace', `out-marker-${n}`, '--job-namespaces', `out-jobs-${n}`, '--skip-oci', '--run-key', `k${n}`];
}

const isJson = (line: string) => line.startsWith('{"level"');

describe('output on a terminal', () => {
  it('a dry run prints readable lines and its plan as a table, no JSON', async () => {
    const args = await scenario(3);
    const r = await run([...args, '--dry-run'], true);
    expect(r.code, r.stderr).toBe(0);
    // Colours on a terminal (pino-pretty's), removed here to read the words.
    const lines = stripVTControlCharacters(r.stdout).split('\n').filter(Boolean);
    expect(lines.filter(isJson)).toEqual([]);
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\] INFO: fleet-cleanup starting \{/));
    // The planned deletions are in the table, not as log lines.
    expect(lines.filter((l) => l.includes('would delete Job'))).toEqual([]);
    const plan = lines.slice(lines.indexOf('Plan: 3 deletions:') + 1, lines.indexOf('Plan: 3 deletions:') + 5);
    expect(plan[0]).toMatch(/^KIND {3}NAMESPACE\/REGISTRY {3}NAME {11}REASON$/);
    for (const row of plan.slice(1)) expect(row).toMatch(/^Job {4}out-jobs-\d+ {11}webapp-[0-9a-f]{5} {3}succeeded 2h ago \(min age 1h\)$/);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^fleet-cleanup: dry run \(marker not written\), would end completed: jobs would delete 3 kept 0/);
  });

  it('a real run prints readable audit lines; --log-format json gives JSON on a terminal, text elsewhere', async () => {
    const text = await run([...(await scenario(1)), '--log-format', 'text'], false);
    expect(text.code, text.stderr).toBe(0);
    // pino-pretty shows a line's `name` (here the Job's) in parentheses after the level.
    expect(text.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] INFO \(webapp-[0-9a-f]{5}\): deleted Job out-jobs-\d+\/webapp-[0-9a-f]{5} \{"audit":true,"action":"delete","kind":"Job"/m);
    expect(text.stdout.split('\n').filter(isJson)).toEqual([]);

    const json = await run([...(await scenario(1)), '--log-format', 'json'], true);
    expect(json.code, json.stderr).toBe(0);
    const lines = json.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.every(isJson)).toBe(true);

    const piped = await run(await scenario(1), false);
    expect(piped.stdout.split('\n').filter(Boolean).every(isJson)).toBe(true);
  });
});

describe('--context', () => {
  it('selects a kubeconfig context, as kubectl does; an unknown one is a usage error', async () => {
    const args = await scenario(2);
    const good = new KubeConfig();
    good.loadFromFile(cluster.kubeconfigPath);
    const current = good.getContextObject(good.getCurrentContext())!;
    const cfg = good.getCurrentCluster()!;
    // The current context points at a closed port: only --context reaches the server.
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ ...cfg, name: 'test' }, { ...cfg, name: 'nowhere', server: 'https://127.0.0.1:2' }],
      users: good.getUsers(),
      contexts: [{ name: 'test', cluster: 'test', user: current.user }, { name: 'nowhere', cluster: 'nowhere', user: current.user }],
      currentContext: 'nowhere',
    });
    const path = join(cluster.dir, 'kubeconfig-contexts');
    await writeFile(path, kc.exportConfig());
    const withPath = args.map((a) => (a === cluster.kubeconfigPath ? path : a));

    const picked = await run([...withPath, '--context', 'test', '--log-format', 'json'], false);
    expect(picked.code, picked.stderr).toBe(0);
    expect(picked.stderr).toMatch(/completed: jobs deleted 2/);

    const unknown = await run([...withPath, '--context', 'prod'], false);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('fleet-cleanup: error: kubeconfig: no context "prod" (--context); it has: test, nowhere\n');
  });
});
