// Kubernetes Events, as an operator reads them: `kubectl get events` against the API test server
// after the real job (`node src/main.ts`) ran a completed, a braked and a partial (registry
// refusing deletes) run. Plus the Event object itself, field by field, as client-go writes one.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEvent } from '../../src/events/recorder.ts';
import { runProcess } from '../cli/harness.ts';
import { BUNDLE_NS, gcEnv, type GcEnv } from '../oci/gc-env.ts';
import { describeWithTools, findTool } from '../registry/tools.ts';

describe('makeEvent', () => {
  it('builds a core/v1 Event as client-go’s recorder does', () => {
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'cattle-fleet-system', name: 'fleet-cleanup', uid: 'u-1', resourceVersion: '42' };
    const date = new Date('2026-11-29T21:00:00.123Z');
    const event = makeEvent(ref, 'Warning', 'CleanupPartial', `partial: ${'x'.repeat(2000)}\nsecond line`, { date, nanos: BigInt(date.getTime()) * 1_000_000n }, 'pod-1');
    expect(event).toMatchObject({
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: `fleet-cleanup.${(BigInt(date.getTime()) * 1_000_000n).toString(16)}`, namespace: 'cattle-fleet-system' },
      involvedObject: ref, type: 'Warning', reason: 'CleanupPartial',
      source: { component: 'fleet-cleanup', host: 'pod-1' }, reportingComponent: 'fleet-cleanup', reportingInstance: 'pod-1',
      firstTimestamp: date, lastTimestamp: date, count: 1,
    });
    expect(event.message).toHaveLength(1024);
    expect(event.message).not.toContain('\n');
  });
});

describeWithTools('Events seen with kubectl get events', ['docker-registry', 'skopeo', 'kubectl'], () => {
  const kubectl = findTool('kubectl')!;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-events-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function world(label: string, deleteEnabled: boolean) {
    const env = await gcEnv({ registry: { deleteEnabled } });
    const kubeconfig = join(dir, `kubeconfig-${label}`);
    await env.server.writeKubeconfig(kubeconfig);
    let runs = 0;
    const run = (...flags: string[]) =>
      runProcess(['--kubeconfig', kubeconfig, '--namespace', BUNDLE_NS, '--job-namespaces', BUNDLE_NS, '--run-key', `${label}-${++runs}`, ...flags]);
    // Asynchronously: the API test server answers from this process.
    const getEvents = async (...args: string[]) => (await promisify(execFile)(kubectl, ['--kubeconfig', kubeconfig, 'get', 'events', '-n', BUNDLE_NS, ...args], { encoding: 'utf8' })).stdout;
    const events = async () =>
      (JSON.parse(await getEvents('--field-selector', 'involvedObject.kind=ConfigMap,involvedObject.name=fleet-cleanup', '-o', 'json')) as { items: Array<Record<string, any>> }).items
        .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    return { env, run, getEvents, events };
  }

  let envs: GcEnv[] = [];
  afterAll(async () => {
    for (const e of envs) await e.close();
    envs = [];
  });

  it('a completed run records Normal CleanupCompleted; a braked run Warning MassDeleteBrake and CleanupPartial; a failed one Warning CleanupFailed', async () => {
    const w = await world('brake', true);
    envs.push(w.env);
    await w.env.artifacts(2, { use: 'bundle' });
    const completed = await w.run();
    expect(completed.code, completed.stderr).toBe(0);
    const summaryOf = (stderr: string) => stderr.trim().split('\n').at(-1)!.replace(/^fleet-cleanup: /, '');
    let events = (await w.events());
    expect(events.map((e) => [e.type, e.reason, e.message])).toEqual([['Normal', 'CleanupCompleted', summaryOf(completed.stderr)]]);
    const marker = await w.env.kube.kubeConfig.makeApiClient((await import('@kubernetes/client-node')).CoreV1Api).readNamespacedConfigMap({ name: 'fleet-cleanup', namespace: BUNDLE_NS });
    expect(events[0]).toMatchObject({
      involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', namespace: BUNDLE_NS, name: 'fleet-cleanup', uid: marker.metadata!.uid },
      source: { component: 'fleet-cleanup' }, reportingComponent: 'fleet-cleanup', count: 1,
    });
    expect(events[0]!.metadata.name).toMatch(/^fleet-cleanup\.[0-9a-f]+$/);

    // Three stale of five: over the brake's 30% and more than 1.
    await w.env.artifacts(3, { use: 'none' });
    const braked = await w.run('--mass-delete-min=1', '--mass-delete-ratio=0.3');
    expect(braked.code, braked.stderr).toBe(1);
    events = (await w.events());
    expect(events.map((e) => [e.type, e.reason])).toEqual([['Normal', 'CleanupCompleted'], ['Warning', 'MassDeleteBrake'], ['Warning', 'CleanupPartial']]);
    expect(events[1]!.message).toMatch(/^mass-delete brake: 3 of 5 known Fleet artifacts/);
    expect(events[2]!.message).toBe(summaryOf(braked.stderr));

    // The table an operator reads.
    const table = await w.getEvents();
    expect(table).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/m);
    expect(table).toMatch(/\sNormal\s+CleanupCompleted\s+configmap\/fleet-cleanup\s+completed: jobs deleted/);
    expect(table).toMatch(/\sWarning\s+MassDeleteBrake\s+configmap\/fleet-cleanup\s+mass-delete brake: /);
    expect(table).toMatch(/\sWarning\s+CleanupPartial\s+configmap\/fleet-cleanup\s+partial: /);

    // A dry run changes nothing, Events included.
    const dry = await w.run('--dry-run', '--mass-delete-min=1', '--mass-delete-ratio=0.3');
    expect(dry.code, dry.stderr).toBe(1);
    expect((await w.events())).toHaveLength(3);

    // A run that could not judge: the Jobs list is forbidden.
    w.env.server.faults.add({ verb: 'list', resource: 'jobs', status: 403, reason: 'Forbidden', message: 'jobs.batch is forbidden: User "system:serviceaccount:x:y" cannot list resource "jobs"' });
    const failed = await w.run('--skip-oci');
    expect(failed.code, failed.stderr).toBe(1);
    events = await w.events();
    expect(events.map((e) => [e.type, e.reason]).at(-1)).toEqual(['Warning', 'CleanupFailed']);
    expect(events.at(-1)!.message).toBe(summaryOf(failed.stderr));
    expect(events.at(-1)!.message).toMatch(/^failed: .*list jobs\.batch in namespace fleet-default: 403 Forbidden/);
  }, 240_000); // five runs of the real process and six of kubectl, on a shared machine

  it('a registry that refuses deletes records Warning RegistryFailed and CleanupPartial', async () => {
    const w = await world('refused', false);
    envs.push(w.env);
    await w.env.artifacts(3, { use: 'bundle' });
    await w.env.artifacts(1, { use: 'none' });
    const partial = await w.run('--partial-ok');
    expect(partial.code, partial.stderr).toBe(0);
    const events = (await w.events());
    expect(events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'RegistryFailed'], ['Warning', 'CleanupPartial']]);
    expect(events[0]!.message).toMatch(/deletes|405|UNSUPPORTED/i);
    expect(events[1]!.message).toMatch(/^partial: /);
  }, 120_000);
});
