// The Helm hook chart, checked without helm (CI has none): every flag and variable the
// templates pass is one the CLI knows (an unknown one exits 2 and fails the Fleet upgrade),
// every value the templates read exists and is documented, the defaults keep the job inside
// Helm's hook timeout, and the RBAC files hold no wildcard. The chart as rendered by a real
// helm is checked in helm.test.ts beside this file.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadYaml } from '@kubernetes/client-node';
import { FLAGS, envName } from '../../src/cli/options.ts';
import { parseDuration } from '../../src/cli/duration.ts';
import { CHART_DIR, chartRules, chartValues } from '../rbac/chart-objects.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFile(join(CHART_DIR, path), 'utf8');
const templateNames = (await readdir(join(CHART_DIR, 'templates'))).sort();
const templates = Object.fromEntries(await Promise.all(templateNames.map(async (n) => [n, await read(`templates/${n}`)] as const)));
const allTemplates = Object.values(templates).join('\n');
const valuesText = await read('values.yaml');
const values = await chartValues();
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Every key of `values` as a dotted path, and whether it holds a leaf (scalar, list, empty map). */
function valuePaths(node: unknown, prefix = ''): Array<{ path: string; leaf: boolean }> {
  return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    const map = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0;
    return [{ path, leaf: !map }, ...(map ? valuePaths(v, path) : [])];
  });
}

// `.Values.a.b` in templates, and `$v.a.b` where the pod template binds `$v := $root.Values`.
const referenced = [...new Set([...allTemplates.matchAll(/(?:\.Values|\$v)\.([A-Za-z][\w.]*\w)/g)].map((m) => m[1]!))];

describe('Chart.yaml', () => {
  it('is a v2 chart named fleet-cleanup whose appVersion (the default image tag) is the package version', async () => {
    const chart = loadYaml(await read('Chart.yaml')) as { apiVersion: string; name: string; version: string; appVersion: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'fleet-cleanup', appVersion: pkg.version });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('templates and values', () => {
  it('pass only flags and FLEET_CLEANUP_* variables the CLI knows', () => {
    const known = new Set(FLAGS.map((f) => f.flag));
    const flags = [...new Set([...allTemplates.matchAll(/"--([a-z][a-z-]*)/g)].map((m) => m[1]!))];
    expect(flags.length).toBeGreaterThan(5);
    expect(flags.filter((f) => !known.has(f))).toEqual([]);
    const variables = [...new Set(allTemplates.match(/FLEET_CLEANUP_[A-Z_]+/g) ?? [])];
    expect(variables).toEqual([envName('run-key')]);
  });

  it('read only values that exist, and every value is read by some template', () => {
    const all = valuePaths(values);
    const paths = new Set(all.map((p) => p.path));
    expect(referenced.filter((r) => !paths.has(r))).toEqual([]);
    const unused = all.filter((p) => p.leaf).map((p) => p.path).filter((p) => !referenced.some((r) => p === r || p.startsWith(`${r}.`)));
    expect(unused).toEqual([]);
  });

  it('document every value with a comment (Kubernetes structures passed through whole excepted)', () => {
    // Nested keys of these are Kubernetes API fields, documented by the API itself.
    const passThrough = new Set(['resources', 'podSecurityContext', 'securityContext', 'nodeSelector', 'tolerations', 'global']);
    const lines = valuesText.split('\n');
    const undocumented: string[] = [];
    const parents: string[] = [];
    lines.forEach((line, i) => {
      const m = /^( *)([A-Za-z][\w-]*):/.exec(line);
      if (!m) return;
      const depth = m[1]!.length / 2;
      parents.length = depth;
      const inPassThrough = parents.some((p) => passThrough.has(p));
      parents.push(m[2]!);
      if (inPassThrough) return;
      let j = i - 1;
      while (j >= 0 && lines[j]!.trim() === '') j--;
      const above = lines[j]?.trim() ?? '';
      if (!above.startsWith('#')) undocumented.push(parents.join('.'));
    });
    expect(undocumented).toEqual([]);
  });

  it('keep the hook inside Helm’s default 5-minute hook timeout, with the time budget inside the deadline', () => {
    const hook = values.hook as { timeBudget: string; activeDeadlineSeconds: number; partialOk: boolean; backoffLimit: number };
    const budgetMs = parseDuration(hook.timeBudget) as number;
    expect(budgetMs).toBeGreaterThan(0);
    expect(budgetMs).toBeLessThan(hook.activeDeadlineSeconds * 1000);
    expect(hook.activeDeadlineSeconds * 1000).toBeLessThan(5 * 60_000);
    expect(hook.partialOk).toBe(true);
    expect(hook.backoffLimit).toBeLessThanOrEqual(1);
    const manual = values.manual as { timeBudget: string; activeDeadlineSeconds: number };
    expect(parseDuration(manual.timeBudget) as number).toBeLessThan(manual.activeDeadlineSeconds * 1000);
  });

  it('run the hook after install and upgrade, with its ServiceAccount and RBAC as regular release resources that exist before it', () => {
    expect(templates['job.yaml']).toMatch(/^\s+helm\.sh\/hook: post-install,post-upgrade$/m);
    expect(templates['job.yaml']).toMatch(/^\s+helm\.sh\/hook-delete-policy: before-hook-creation$/m);
    for (const name of ['serviceaccount.yaml', 'clusterrole.yaml', 'role.yaml', 'cronjob.yaml']) expect(templates[name], name).not.toContain('helm.sh/hook');
    // One Pod template for the hook Job and the manual-rerun CronJob.
    expect(templates['job.yaml']).toContain('include "fleet-cleanup.podTemplate" (dict "root" . "manual" false)');
    expect(templates['cronjob.yaml']).toContain('include "fleet-cleanup.podTemplate" (dict "root" . "manual" true)');
    expect(templates['cronjob.yaml']).toMatch(/^\s+suspend: true$/m);
  });

  it('run the Pod as the image’s non-root user with a read-only root filesystem and no privileges', async () => {
    const dockerUser = /^USER\s+(\d+)/m.exec(await readFile(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
    expect(values.securityContext).toMatchObject({
      runAsNonRoot: true, runAsUser: Number(dockerUser), allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(dockerUser), seccompProfile: { type: 'RuntimeDefault' } });
    expect(values.resources).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { cpu: expect.any(String), memory: expect.any(String) } });
  });
});

describe('RBAC rules (helm-hook/files)', () => {
  it('name no wildcard, and limit by name only verbs that carry a name', async () => {
    const { clusterRole, role } = await chartRules();
    const all = [...clusterRole, ...role];
    expect(JSON.stringify(all)).not.toContain('*');
    for (const rule of all.filter((r) => r.resourceNames)) expect(rule.verbs.filter((v) => !['get', 'update', 'patch', 'delete'].includes(v))).toEqual([]);
    // The marker is the only ConfigMap the job touches, and only in the release namespace.
    expect(clusterRole.flatMap((r) => r.resources ?? [])).not.toContain('configmaps');
    expect(role.filter((r) => r.verbs.some((v) => v !== 'create')).every((r) => r.resourceNames?.join() === values.markerName)).toBe(true);
  });
});
