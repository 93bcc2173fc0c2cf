// The OCI phase against an API server that keeps refusing (a 429 storm, as API Priority and
// Fairness answers under load): overload is not the upgrade's fault, so the run ends `partial`
// and the Helm hook succeeds, while nothing at all is swept on the strength of a mark it could
// not finish. What the chart itself gets wrong (RBAC) still ends `failed`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { RequestFilter } from '../apiserver/index.ts';
import { readMarker, runInProcess, type CliRun } from '../cli/harness.ts';
import { InstantClock } from '../fixtures/clock.ts';
import { describeWithTools } from '../registry/tools.ts';
import { BUNDLE_NS, expectNothingDeleted, gcEnv, type Artifact, type GcEnv } from './gc-env.ts';

let env: GcEnv | undefined;
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-overload-'));
});
afterEach(async () => {
  await env?.close();
  env = undefined;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TOO_MANY = 'Too many requests, please try again later\\.';
const OVERLOADED = 'the API server is overloaded or unreachable';

/** In use, stale with secrets, and an orphan: what a sweep would delete if it ran. */
async function world(e: GcEnv): Promise<{ stale: Artifact[] }> {
  await e.artifacts(2, { use: 'bundle' });
  await e.artifact({ use: 'deployment' });
  const stale = [...(await e.artifacts(2, { use: 'none' })), await e.artifact({ use: 'none', secrets: false })];
  return { stale };
}

/**
 * The run as the Helm hook runs it: the chart passes --partial-ok (values hook.partialOk: true)
 * and no --retries (default 5: six attempts). In this process, with an instant clock for the
 * API client, so that backoff and Retry-After cost the test no time.
 */
async function runAsTheChart(e: GcEnv, runKey: string): Promise<{ run: CliRun; marker: Record<string, string>; clock: InstantClock }> {
  const kubeconfig = join(dir, `kubeconfig-${runKey}`);
  await e.server.writeKubeconfig(kubeconfig);
  const clock = new InstantClock();
  const run = await runInProcess(
    ['--kubeconfig', kubeconfig, '--namespace', BUNDLE_NS, '--job-namespaces', BUNDLE_NS, '--run-key', runKey, '--time-budget=200s', '--partial-ok', '--oci-min-age=1h'],
    {},
    { clock },
  );
  const marker = (await readMarker(e.kube.kubeConfig.makeApiClient(CoreV1Api), BUNDLE_NS))?.data ?? {};
  return { run, marker, clock };
}

const lastLine = (run: CliRun) => run.stderr.split('\n').filter(Boolean).at(-1);

describeWithTools('OCI garbage collection against an overloaded API server', ['docker-registry', 'skopeo'], () => {
  it.each<[string, RequestFilter, string]>([
    ['the Bundle list', { group: 'fleet.cattle.io', resource: 'bundles' }, 'list bundles\\.fleet\\.cattle\\.io in all namespaces'],
    ['the BundleDeployment list', { group: 'fleet.cattle.io', resource: 'bundledeployments' }, 'list bundledeployments\\.fleet\\.cattle\\.io in all namespaces'],
    ['the Secret list', { group: '', resource: 'secrets' }, 'list secrets in all namespaces'],
  ])('a 429 storm on %s: the run ends partial, exit 0 with --partial-ok, nothing deleted, the cause names the list; the next run sweeps', async (_title, list, named) => {
    env = await gcEnv();
    const { stale } = await world(env);
    const storm = env.server.faults.add({ verb: 'list', ...list, status: 429 });
    await env.mark();
    env.server.requests.reset();

    const { run, marker, clock } = await runAsTheChart(env, 'storm');

    expect(storm.hits).toBe(6); // the first attempt and the chart's 5 retries
    // Bundles refused: the BundleDeployments are not asked for (no second list for an overloaded server to refuse).
    if (list.resource === 'bundles') expect(env.server.requests.count({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundledeployments' })).toBe(0);
    expect(clock.sleeps.filter((ms) => ms >= 1000).length).toBeGreaterThanOrEqual(5); // each after the server's Retry-After: 1
    const cause = `${OVERLOADED}: ${named}: 429 TooManyRequests: ${TOO_MANY} \\(gave up after 6 attempts\\)`;
    expect(run.code, run.stderr).toBe(0);
    expect(marker.status).toBe('partial');
    expect(marker.cause).toMatch(new RegExp(`^oci partial: ${cause}$`));
    expect(lastLine(run)).toMatch(new RegExp(`^fleet-cleanup: partial: .*; oci partial \\(${cause}\\);`));
    expect(env.server.requests.count({ verb: 'delete', resource: 'secrets' })).toBe(0);
    expect((await env.registryRequests()).filter((r) => r.startsWith('DELETE'))).toEqual([]);
    await expectNothingDeleted(env, ...stale);

    // The server recovers: the next run of the same release continues and sweeps.
    storm.remove();
    const next = await runAsTheChart(env, 'storm');
    expect(next.run.code, next.run.stderr).toBe(0);
    expect(next.marker.status).toBe('completed');
    for (const a of stale) {
      expect(await env.status(a), a.repository).toBe(404);
      expect(await env.secretsLeft(a)).toEqual([]);
    }
  });

  it('a 403 on the Bundle list still fails the run (exit 1 even with --partial-ok): missing rights are the chart\'s to fix', async () => {
    env = await gcEnv();
    const { stale } = await world(env);
    const forbidden = env.server.faults.add({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundles', status: 403, message: 'bundles.fleet.cattle.io is forbidden: User "system:serviceaccount:cattle-fleet-system:fleet-cleanup" cannot list resource "bundles" in API group "fleet.cattle.io" at the cluster scope' });
    await env.mark();
    env.server.requests.reset();

    const { run, marker } = await runAsTheChart(env, 'forbidden');

    expect(forbidden.hits).toBe(1); // not retried
    // The BundleDeployments are not asked for once the Bundles cannot be read.
    expect(env.server.requests.count({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundledeployments' })).toBe(0);
    expect(run.code, run.stderr).toBe(1);
    expect(marker.status).toBe('failed');
    expect(marker.cause).toMatch(/^oci failed: cannot tell which artifacts are in use: list bundles\.fleet\.cattle\.io in all namespaces: 403 Forbidden: bundles\.fleet\.cattle\.io is forbidden: /);
    await expectNothingDeleted(env, ...stale);
  });

  it.each<[string, RequestFilter, string]>([
    ['the Secret list of the candidates', { group: '', resource: 'secrets' }, `${OVERLOADED}: list secrets in all namespaces`],
    ['the sweep\'s fresh read of the Bundles', { group: 'fleet.cattle.io', resource: 'bundles' }, `re-reading what is in use before a delete: ${OVERLOADED}: list bundles\\.fleet\\.cattle\\.io in all namespaces`],
  ])('a 429 storm that starts after the mark, on %s: partial, nothing deleted', async (_title, list, cause) => {
    env = await gcEnv({ client: { clock: new InstantClock() } });
    const e = env;
    const { stale } = await world(e);
    // The first Secret list (is there OCI storage at all?) and the mark's lists pass; from the
    // mark's last list on, the server pushes back.
    let storm: { readonly hits: number } | undefined;
    e.server.faults.add({ verb: 'list', group: 'fleet.cattle.io', resource: 'bundledeployments', times: 1, before: () => void (storm = e.server.faults.add({ verb: 'list', ...list, status: 429 })) });
    await e.mark();

    const result = await e.run({ allowMassDelete: true, registryConcurrency: 1 });

    expect(storm?.hits).toBe(5); // the first attempt and testKube's 4 retries
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(new RegExp(`^${cause}: 429 TooManyRequests: ${TOO_MANY} \\(gave up after 5 attempts\\)$`));
    await expectNothingDeleted(e, ...stale);
  });

  it('the watch of what is in use is refused for overload (429): partial, nothing deleted', async () => {
    env = await gcEnv();
    const { stale } = await world(env);
    env.server.faults.add({ verb: 'watch', group: 'fleet.cattle.io', resource: 'bundledeployments', status: 429 });
    await env.mark();

    const result = await env.run({ allowMassDelete: true });

    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/^watch bundledeployments\.fleet\.cattle\.io in all namespaces: 429 .*nothing more deleted$/);
    await expectNothingDeleted(env, ...stale);
  });
});
