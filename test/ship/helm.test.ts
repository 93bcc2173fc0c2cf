// The Helm hook chart as a real `helm` lints and renders it: the hook annotations, the pod's
// security context, and RBAC rules equal to the files the RBAC test runs the job under.
// helm is the pinned one (test/toolchain/), never the machine's.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadAllYaml, loadYaml, type V1ClusterRole, type V1CronJob, type V1Job, type V1PolicyRule, type V1Role } from '@kubernetes/client-node';
import { CHART_DIR, chartRules } from '../rbac/chart-objects.ts';
import { describeWithToolchain } from '../toolchain/describe.ts';

const read = (path: string) => readFile(join(CHART_DIR, path), 'utf8');

describeWithToolchain('the chart rendered by helm', ({ helm }) => {
  it('lints and renders the hook as designed', async () => {
    const run = (...args: string[]) => {
      const r = spawnSync(helm, args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    run('lint', CHART_DIR);
    const docs = loadAllYaml(run('template', 'fleet', CHART_DIR, '--namespace', 'cattle-fleet-system')).filter(Boolean) as Array<{ kind: string }>;
    const byKind = <T>(kind: string) => docs.filter((d) => d.kind === kind) as T[];
    const [job] = byKind<V1Job>('Job');
    const [cron] = byKind<V1CronJob>('CronJob');
    const rules = await chartRules();
    // The finished Job (and its audit lines) outlives a successful run: only its TTL or the next upgrade removes it.
    expect(job?.metadata?.annotations).toMatchObject({ 'helm.sh/hook': 'post-install,post-upgrade', 'helm.sh/hook-delete-policy': 'before-hook-creation' });
    expect(job?.spec?.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(job?.spec).toMatchObject({ backoffLimit: 1, activeDeadlineSeconds: 240, template: { spec: { restartPolicy: 'Never', serviceAccountName: 'fleet-fleet-cleanup' } } });
    const container = job!.spec!.template.spec!.containers[0]!;
    expect(container).toMatchObject({ terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'FallbackToLogsOnError' });
    expect(container.args).toContain('--termination-log=/dev/termination-log');
    expect(container.image).toBe(`ghcr.io/fleet-cleanup/fleet-cleanup:${(loadYaml(await read('Chart.yaml')) as { appVersion: string }).appVersion}`);
    expect(job!.spec!.template.spec!.tolerations).toContainEqual({ key: 'cattle.io/os', operator: 'Equal', value: 'linux', effect: 'NoSchedule' });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(container.args).toEqual(expect.arrayContaining(['--partial-ok', '--time-budget=200s', '--namespace=cattle-fleet-system']));
    expect(container.env).toContainEqual({ name: 'FLEET_CLEANUP_RUN_KEY', value: `fleet-cleanup-${(loadYaml(await read('Chart.yaml')) as { version: string }).version}` });
    expect(cron?.spec?.suspend).toBe(true);
    expect(cron?.spec?.jobTemplate.spec?.template.spec?.containers[0]?.args).toContain('--force');
    expect(byKind<V1ClusterRole>('ClusterRole')[0]?.rules).toEqual(rules.clusterRole satisfies V1PolicyRule[]);
    expect(byKind<V1Role>('Role')[0]?.rules).toEqual(rules.role);
  });
});

describeWithToolchain('the chart’s values, checked by helm', ({ helm }) => {
  const helmRun = (...args: string[]) => spawnSync(helm, args, { encoding: 'utf8' });
  const render = (...set: string[]) => helmRun('template', 'fleet', CHART_DIR, '--namespace', 'cattle-fleet-system', ...set.flatMap((s) => ['--set', s]));

  // Each of these rendered silently once, and the first made the job exit 2 and fail the upgrade.
  const refused: Array<{ set: string; says: RegExp }> = [
    { set: 'gitjobs.minAge=3600', says: /gitjobs\.minAge: Invalid type\. Expected: string, given: integer/ },
    { set: 'gitjobs.minAge=1x', says: /gitjobs\.minAge: Does not match pattern/ },
    { set: 'gitjobs.keepLast=-1', says: /gitjobs\.keepLast: Must be greater than or equal to 0/ },
    { set: 'logLevel=verbose', says: /logLevel: logLevel must be one of the following/ },
    { set: 'hook.activeDeadlineSeconds=0', says: /hook\.activeDeadlineSeconds: Must be greater than or equal to 1/ },
    { set: 'image.pullPolicy=Sometimes', says: /image\.pullPolicy: image\.pullPolicy must be one of the following/ },
    { set: 'gitjobs.keeplast=3', says: /Additional property keeplast is not allowed/ },
  ];
  for (const { set, says } of refused) {
    it(`helm lint and helm template refuse --set ${set}`, () => {
      for (const r of [helmRun('lint', CHART_DIR, '--set', set), render(set)]) {
        expect(r.status, r.stdout).not.toBe(0);
        expect(r.stdout + r.stderr).toMatch(says);
      }
    });
  }

  it('helm template and helm lint refuse a time budget that is not below the Job’s deadline', () => {
    for (const [set, what, deadline] of [['hook.timeBudget=10m', 'hook', 240], ['hook.timeBudget=4m', 'hook', 240], ['hook.timeBudget=0s', 'hook', 240], ['manual.timeBudget=1h30m', 'manual', 3600]] as const) {
      const r = render(set);
      expect(r.status, set).not.toBe(0);
      expect(r.stderr).toContain(`${what}.timeBudget (${set.split('=')[1]}) must be above 0 and below ${what}.activeDeadlineSeconds (${deadline}s)`);
      const lint = helmRun('lint', CHART_DIR, '--set', set);
      expect(lint.status, set).not.toBe(0);
      expect(lint.stdout).toContain(`${what}.timeBudget (${set.split('=')[1]}) must be above 0 and below ${what}.activeDeadlineSeconds (${deadline}s)`);
    }
    // Just below the deadline renders.
    expect(render('hook.timeBudget=3m59s').status).toBe(0);
    expect(render('hook.timeBudget=239.5s').status).not.toBe(0);
  });

  it('composes the image from image.registry, or global.cattle.systemDefaultRegistry instead, and image.repository', () => {
    const image = (...set: string[]) => {
      const r = render(...set);
      expect(r.status, r.stderr).toBe(0);
      const docs = loadAllYaml(r.stdout).filter(Boolean) as V1Job[];
      return [...new Set(docs.filter((d) => d.kind === 'Job').map((d) => d.spec!.template.spec!.containers[0]!.image))];
    };
    expect(image('image.tag=1.2.3')).toEqual(['ghcr.io/fleet-cleanup/fleet-cleanup:1.2.3']);
    expect(image('image.tag=1.2.3', 'global.cattle.systemDefaultRegistry=reg.example:5000')).toEqual(['reg.example:5000/fleet-cleanup/fleet-cleanup:1.2.3']);
    expect(image('image.tag=1.2.3', 'image.registry=mirror.example')).toEqual(['mirror.example/fleet-cleanup/fleet-cleanup:1.2.3']);
  });
});
