// `npm run demo` must keep working and keep telling the truth: run it as a user would.
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { spawnNode } from '../cli/harness.ts';
import { toolchain } from '../toolchain/index.ts';

const DEMO = fileURLToPath(new URL('./run-demo.ts', import.meta.url));

it.skipIf('missing' in toolchain())('runs the operator’s commands: helm install runs the hook, helm upgrade skips, the manual rerun completes', { timeout: 300_000 }, async () => {
  // A failed or timed-out test must not leave the demo (and the jobs it runs) behind.
  const kill = new AbortController();
  onTestFinished(() => kill.abort());
  const demo = await spawnNode(DEMO, [], {}, kill.signal);
  expect(demo.stderr).toBe('');
  expect(demo.code).toBe(0);
  const out = demo.stdout;
  const step = (command: string) => {
    const at = out.indexOf(`$ ${command}`);
    expect(at, command).toBeGreaterThanOrEqual(0);
    return out.slice(at, out.indexOf('\n$ ', at + 1) >>> 0 || undefined);
  };
  expect(step('helm install fleet-cleanup ./helm-hook -n cattle-fleet-system --set gitjobs.keepLast=2')).toMatch(/STATUS: deployed[\s\S]*\(exit 0, /);
  // The chart keeps the succeeded hook Job, so its summary is there for kubectl logs.
  const hookLogs = step('kubectl logs job/fleet-cleanup -n cattle-fleet-system --tail=3');
  expect(hookLogs).toMatch(/\(exit 0, /);
  expect(hookLogs).toMatch(/fleet-cleanup: completed: jobs deleted 33 kept \d+ skipped 0 errors 0/);
  expect(step("kubectl get configmap fleet-cleanup -n cattle-fleet-system -o 'jsonpath={.data.status}'")).toMatch(/\n {2}completed\n {2}\(exit 0, /);
  expect(step('helm upgrade fleet-cleanup ./helm-hook')).toMatch(/REVISION: 2[\s\S]*\(exit 0, [\s\S]*said: fleet-cleanup: already completed for run key fleet-cleanup-0\.1\.0 /);
  expect(step('kubectl create job --from=cronjob/fleet-cleanup fleet-cleanup-manual-1 -n cattle-fleet-system')).toContain('job.batch/fleet-cleanup-manual-1 created');
  expect(step('kubectl wait --for=condition=complete job/fleet-cleanup-manual-1')).toContain('job.batch/fleet-cleanup-manual-1 condition met');
  expect(step('kubectl logs job/fleet-cleanup-manual-1')).toMatch(/fleet-cleanup: completed: jobs deleted 0 /);
  // Seeded: fleet-local 8 old succeeded Jobs; fleet-default 15 + 10 + 6 over three GitRepos.
  // gitjobs.keepLast=2 keeps the 2 newest succeeded per GitRepo (for `apps` the two recent ones).
  expect(out).toMatch(/fleet-local +GitRepo Job, succeeded over 1h ago +deleted +6 +kept +2/);
  expect(out).toMatch(/fleet-default +GitRepo Job, succeeded over 1h ago +deleted +27 +kept +4/);
  for (const kept of ['GitRepo Job, failed', 'GitRepo Job, running', 'GitRepo Job, succeeded minutes ago', 'Job owned by a CronJob', 'Job owned by nothing']) {
    expect(out).toMatch(new RegExp(`${kept}.* deleted +0 `));
  }
  expect(out).toContain('Pods of deleted Jobs still present: 0');
  if (process.getuid?.() === 0) expect(out).toMatch(/The hook ran as fleet-cleanup-\w+: uid 65532, read-only root yes, memory limit 268435456 bytes \(cgroup\), ServiceAccount fleet-cleanup, exit 0/);
  expect(out).toMatch(/Operator commands:\n {2}exit 0 +[\d.]+s {2}helm install/);
});
