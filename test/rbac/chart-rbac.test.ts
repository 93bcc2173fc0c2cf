// The chart's RBAC, proven by running the real job under it (Fleet 0.10.3 shipped a cleanup hook
// whose ServiceAccount could not list Jobs). The API test server enforces RBAC for
// ServiceAccount tokens; the rules come verbatim from helm-hook/files/*.yaml. With all of them
// the job succeeds; without any one verb of any one rule it does not complete, says which
// verb on which resource was refused, and deletes nothing it could not judge.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiServer } from '../apiserver/index.ts';
import { installFleetCrds } from '../fixtures/fleet-objects.ts';
import { startRegistry, type TestRegistry } from '../registry/registry.ts';
import { describeWithTools } from '../registry/tools.ts';
import { apiServerCluster, type ClusterHandle } from '../scenarios/cluster.ts';
import { runAsServiceAccount, runsAsTheChartServiceAccount } from '../scenarios/scenarios.ts';
import { jobNames, markerData, markerEvents } from '../scenarios/world.ts';
import { chartRules, resourceLabel, withoutVerb, type ChartRules } from './chart-objects.ts';

const rules = await chartRules();

/** Each verb of each resource of each rule, the unit whose removal must be noticed. */
const cases = [
  ...rules.clusterRole.map((r) => ({ where: 'ClusterRole' as const, r })),
  ...rules.role.map((r) => ({ where: 'Role' as const, r })),
].flatMap(({ where, r }) => (r.apiGroups ?? []).flatMap((group) => (r.resources ?? []).flatMap((resource) => r.verbs.map((verb) => ({ where, group, resource, verb })))));

type Untouched = 'all' | 'jobs' | 'oci' | 'ociSecrets' | 'none' | 'events';

/**
 * What a run without `verb` on `resource` must leave alone beyond what is never deleted (kept
 * Jobs, the artifact in use): whatever it could not judge. A rule this table does not know
 * fails the test, so a new rule gets a deliberate expectation.
 */
function untouchedWithout(verb: string, label: string): Untouched {
  const table: Record<string, Untouched> = {
    // The marker is read and taken before anything else: without it, nothing happens.
    'get configmaps': 'all',
    'create configmaps': 'all',
    // Finishing the marker is the last step; the cleaning before it was judged correctly.
    'update configmaps': 'none',
    'list jobs.batch': 'jobs',
    'delete jobs.batch': 'jobs',
    'list bundles.fleet.cattle.io': 'oci',
    'list bundledeployments.fleet.cattle.io': 'oci',
    // The sweep judges every delete by the watched view: without a watch, nothing is swept.
    'watch bundles.fleet.cattle.io': 'oci',
    'watch bundledeployments.fleet.cattle.io': 'oci',
    'list secrets': 'oci',
    'delete secrets': 'ociSecrets',
    // Events are best effort: the run completes, cleans, and warns that it could not record them.
    'create events': 'events',
  };
  const untouched = table[`${verb} ${label}`];
  if (!untouched) throw new Error(`no expectation for a run without "${verb} ${label}": add one to the table`);
  return untouched;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describeWithTools('the chart’s RBAC, run under', ['docker-registry', 'skopeo'], () => {
  let registry: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    registry = await startRegistry();
    dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-rbac-'));
  });
  afterAll(async () => {
    await registry?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh RBAC-enforcing API server per case: no grant or object leaks from one to the next. */
  async function withCluster<T>(fn: (cluster: ClusterHandle) => Promise<T>): Promise<T> {
    const server = await startApiServer({ rbac: true });
    try {
      const cluster = await apiServerCluster(server, await mkdtemp(join(dir, 'case-')));
      await installFleetCrds(cluster.kubeConfig);
      return await fn(cluster);
    } finally {
      await server.close();
    }
  }

  it('all of the chart’s rules: the job succeeds, cleans, and writes the marker', () => withCluster((cluster) => runsAsTheChartServiceAccount(cluster, registry)));

  for (const [n, { where, group, resource, verb }] of cases.entries()) {
    const label = resourceLabel(group, resource);
    const expectation = untouchedWithout(verb, label) === 'events'
      ? 'the run completes, cleans, records no Event and warns that it could not'
      : 'the run does not complete, names what was refused, and deletes nothing it could not judge';
    it(`without "${verb} ${label}" (${where}): ${expectation}`, () =>
      withCluster(async (cluster) => {
        const less: ChartRules = {
          ...rules,
          clusterRole: where === 'ClusterRole' ? withoutVerb(rules.clusterRole, verb, group, resource) : rules.clusterRole,
          role: where === 'Role' ? withoutVerb(rules.role, verb, group, resource) : rules.role,
        };
        const { run, id, markerName, jobs, oci } = await runAsServiceAccount(cluster, registry, less, `rbac-${n}`);
        // (Each case has its own registry prefix: the registry outlives the per-case API servers.)
        const marker = await markerData(cluster, id.namespace, markerName);
        const untouched = untouchedWithout(verb, label);
        if (untouched === 'events') {
          expect(run.code, run.stderr).toBe(0);
          expect(marker?.status).toBe('completed');
          expect(run.stderr).toMatch(new RegExp(`^fleet-cleanup: warning: cannot record event CleanupCompleted on configmap ${escape(id.namespace)}/${escape(markerName)}: create events in namespace ${escape(id.namespace)}: 403 Forbidden: `, 'm'));
          expect(await markerEvents(cluster, id.namespace, markerName)).toEqual([]);
          expect(await jobNames(cluster, jobs.namespace)).toEqual(jobs.kept);
          return;
        }

        // Not completed: exit 1, or (with --partial-ok, as the hook runs) a marker that says partial.
        expect(marker?.status, run.stderr).not.toBe('completed');
        if (run.code === 0) expect(marker?.status).toBe('partial');
        else expect(run.code).toBe(1);
        // One readable line naming the verb, the resource and the refusal.
        expect(run.stderr).toMatch(new RegExp(`^fleet-cleanup: .*\\b${escape(verb)} ${escape(label)}\\b.*: 403 Forbidden: `, 'm'));

        // Never deleted, whatever happens: failed, running, young and foreign Jobs; what is in use.
        const jobsLeft = await jobNames(cluster, jobs.namespace);
        expect(jobsLeft).toEqual(expect.arrayContaining(jobs.kept));
        expect(await oci!.status(oci!.inUse)).toBe(200);
        expect(await oci!.secretsLeft([...oci!.inUse.secrets, oci!.connectionSecret])).toHaveLength(oci!.inUse.secrets.length + 1);
        // Nothing the run could not judge.
        if (untouched === 'all' || untouched === 'jobs') expect(jobsLeft).toEqual([...jobs.deletable, ...jobs.kept].sort());
        if (untouched === 'all' || untouched === 'oci') expect(await oci!.status(oci!.stale)).toBe(200);
        if (untouched === 'all' || untouched === 'oci' || untouched === 'ociSecrets') {
          expect(await oci!.secretsLeft(oci!.stale.secrets)).toHaveLength(oci!.stale.secrets.length);
        }
      }));
  }
});
