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
    expect(job?.metadata?.annotations).toMatchObject({ 'helm.sh/hook': 'post-install,post-upgrade', 'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded' });
    expect(job?.spec).toMatchObject({ backoffLimit: 1, activeDeadlineSeconds: 240, template: { spec: { restartPolicy: 'Never', serviceAccountName: 'fleet-fleet-cleanup' } } });
    const container = job!.spec!.template.spec!.containers[0]!;
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(container.args).toEqual(expect.arrayContaining(['--partial-ok', '--time-budget=200s', '--namespace=cattle-fleet-system']));
    expect(container.env).toContainEqual({ name: 'FLEET_CLEANUP_RUN_KEY', value: `fleet-cleanup-${(loadYaml(await read('Chart.yaml')) as { version: string }).version}` });
    expect(cron?.spec?.suspend).toBe(true);
    expect(cron?.spec?.jobTemplate.spec?.template.spec?.containers[0]?.args).toContain('--force');
    expect(byKind<V1ClusterRole>('ClusterRole')[0]?.rules).toEqual(rules.clusterRole satisfies V1PolicyRule[]);
    expect(byKind<V1Role>('Role')[0]?.rules).toEqual(rules.role);
  });
});
