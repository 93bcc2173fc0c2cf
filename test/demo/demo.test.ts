// `npm run demo` must keep working and keep telling the truth: run it as a user would.
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { spawnNode } from '../cli/harness.ts';

const DEMO = fileURLToPath(new URL('./run-demo.ts', import.meta.url));

it('runs the job twice, deletes only old succeeded GitRepo Jobs beyond --keep-last, and shows the marker', async () => {
  // A failed or timed-out test must not leave the demo (and the job it runs) behind.
  const kill = new AbortController();
  onTestFinished(() => kill.abort());
  const demo = await spawnNode(DEMO, [], {}, kill.signal);
  expect(demo.stderr).toBe('');
  expect(demo.code).toBe(0);
  const out = demo.stdout;
  // Seeded: fleet-local 8 old succeeded Jobs; fleet-default 15 + 10 + 6 over three GitRepos. --keep-last 2
  // keeps the 2 newest succeeded per GitRepo (for `apps` those are the two recent ones).
  expect(out).toMatch(/fleet-local +GitRepo Job, succeeded over 1h ago +deleted +6 +kept +2/);
  expect(out).toMatch(/fleet-default +GitRepo Job, succeeded over 1h ago +deleted +27 +kept +4/);
  for (const kept of ['GitRepo Job, failed', 'GitRepo Job, running', 'GitRepo Job, succeeded minutes ago', 'Job owned by a CronJob', 'Job owned by nothing']) {
    expect(out).toMatch(new RegExp(`${kept}.* deleted +0 `));
  }
  expect(out).toContain('Pods of deleted Jobs still present: 0');
  expect(out).toMatch(/fleet-cleanup: completed: jobs deleted 33 kept \d+ skipped 0 errors 0/);
  expect(out).toMatch(/fleet-cleanup: already completed for run key demo-1 at \S+; nothing to do/);
  expect(out).toMatch(/status +completed\n/);
  expect(out).toMatch(/summary +\{"jobs":\{"deleted":33,/);
});
