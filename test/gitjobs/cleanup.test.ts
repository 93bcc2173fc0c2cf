// The GitRepo Job phase against the Kubernetes API test server: what a user would check with
// kubectl afterwards (which Jobs and Pods are left), the audit lines, and the outcome.
import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanupGitJobs, type GitJobOptions } from '../../src/gitjobs/cleanup.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds, type GitRepoRef, type SeededJob } from '../fixtures/fleet-objects.ts';
import { FakeClock } from '../fixtures/clock.ts';
import { runContext, testKube, type TestKube } from '../fixtures/kube.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const ago = (ms: number) => new Date(Date.now() - ms);
const defaults: GitJobOptions = { namespaces: 'all', minAgeMs: HOUR, keepLast: 0, deleteFailed: false, pageSize: 50 };

let server: TestApiServer;
let kube: TestKube;
let seeder: FleetSeeder;
let admin: { batch: BatchV1Api; core: CoreV1Api };

async function start(opts: { continueTtlMs?: number } = {}): Promise<void> {
  server = await startApiServer(opts);
  kube = testKube(server.kubeconfig());
  await installFleetCrds(kube.kubeConfig);
  seeder = new FleetSeeder(kube.kubeConfig);
  admin = { batch: kube.kubeConfig.makeApiClient(BatchV1Api), core: kube.kubeConfig.makeApiClient(CoreV1Api) };
  for (const ns of ['fleet-local', 'fleet-default', 'another']) await seeder.namespace(ns);
}

afterEach(async () => {
  await server?.close();
});

const key = (s: SeededJob | V1Job) => {
  const job = 'job' in s ? s.job : s;
  return `${job.metadata?.namespace}/${job.metadata?.name}`;
};
const keys = (...jobs: SeededJob[]) => jobs.map(key).sort();

async function remainingJobs(): Promise<string[]> {
  const list = await admin.batch.listJobForAllNamespaces({});
  return list.items.map(key).sort();
}

/** The Jobs whose Pods still exist, as `<namespace>/<job name>`. */
async function jobsWithPods(): Promise<string[]> {
  const pods = await admin.core.listPodForAllNamespaces({});
  return [...new Set(pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.ownerReferences?.[0]?.name}`))].sort();
}

const deleteRequests = () => server.requests.count({ verb: 'delete', resource: 'jobs' });

/**
 * A believable installation: GitRepos in fleet-local, fleet-default and another namespace,
 * with old and young succeeded, failed and running Jobs, plus Jobs that are not Fleet's.
 */
async function seedMixed() {
  const local = await seeder.gitRepo('fleet-local', 'local-app');
  const fleetDefault = await seeder.gitRepo('fleet-default', 'default-app');
  const other = await seeder.gitRepo('another', 'other-app');
  const s = {
    localOld3h: await seeder.gitJob(local, { state: 'succeeded', finishedAt: ago(3 * HOUR) }),
    localOld2h: await seeder.gitJob(local, { state: 'succeeded', finishedAt: ago(2 * HOUR) }),
    localYoung: await seeder.gitJob(local, { state: 'succeeded', finishedAt: ago(10 * MIN) }),
    localRunning: await seeder.gitJob(local, { state: 'running' }),
    localFailed: await seeder.gitJob(local, { state: 'failed', finishedAt: ago(5 * HOUR) }),
    defaultOld4h: await seeder.gitJob(fleetDefault, { state: 'succeeded', finishedAt: ago(4 * HOUR) }),
    defaultFailed6h: await seeder.gitJob(fleetDefault, { state: 'failed', finishedAt: ago(6 * HOUR) }),
    defaultFailed3h: await seeder.gitJob(fleetDefault, { state: 'failed', finishedAt: ago(3 * HOUR) }),
    otherOld2h: await seeder.gitJob(other, { state: 'succeeded', finishedAt: ago(2 * HOUR) }),
    cron: await seeder.cronJobJob('fleet-local', 'nightly-backup', { state: 'succeeded', finishedAt: ago(9 * HOUR) }),
    plain: await seeder.plainJob('another', 'one-off', { state: 'succeeded', finishedAt: ago(9 * HOUR) }),
  };
  const all = keys(...Object.values(s));
  return { ...s, all, repos: { local, fleetDefault, other } };
}

/** `count` succeeded Jobs of one GitRepo, finished 2h30m, 3h30m, ... ago (no Pods: faster to seed). */
async function seedSucceeded(repo: GitRepoRef, count: number): Promise<SeededJob[]> {
  const jobs: SeededJob[] = [];
  for (let i = 0; i < count; i++) jobs.push(await seeder.gitJob(repo, { state: 'succeeded', finishedAt: ago((2.5 + i) * HOUR), withPod: false }));
  return jobs;
}

/** One GitRepo fleet-local/app with `count` old succeeded Jobs. */
async function appWithOldJobs(count: number): Promise<SeededJob[]> {
  return seedSucceeded(await seeder.gitRepo('fleet-local', 'app'), count);
}

const without = (all: string[], gone: string[]) => all.filter((k) => !gone.includes(k));

describe('cleanupGitJobs', () => {
  beforeEach(() => start());

  it('deletes old succeeded GitRepo Jobs in every namespace with their Pods, and nothing else', async () => {
    const w = await seedMixed();
    const result = await cleanupGitJobs(runContext(kube), defaults);

    const gone = keys(w.localOld3h, w.localOld2h, w.defaultOld4h, w.otherOld2h);
    expect(result).toEqual({ phase: 'gitjobs', outcome: 'completed', tallies: { jobs: { deleted: 4, kept: 1, skipped: 0, errors: 0 } } });
    expect(await remainingJobs()).toEqual(without(w.all, gone));
    await vi.waitFor(async () => expect(await jobsWithPods()).toEqual(without(w.all, gone)));
    expect(deleteRequests()).toBe(4);
  });

  it('writes one audit line per deleted Job naming namespace, name, uid, GitRepo and reason', async () => {
    const w = await seedMixed();
    await cleanupGitJobs(runContext(kube), defaults);

    const lines = kube.audits('delete');
    expect(lines.map((l) => `${l.namespace}/${l.name}`).sort()).toEqual(keys(w.localOld3h, w.localOld2h, w.defaultOld4h, w.otherOld2h));
    const line = lines.find((l) => l.name === w.defaultOld4h.job.metadata?.name);
    expect(line).toMatchObject({
      level: 'info', kind: 'Job', namespace: 'fleet-default', uid: w.defaultOld4h.job.metadata?.uid,
      gitrepo: 'fleet-default/default-app', reason: expect.stringMatching(/^succeeded 4h(0m)? ago \(min age 1h\)$/),
    });
    expect(kube.lines.filter((l) => l.level === 'info' && !l.audit)).toEqual([]);
  });

  it('honours the minimum age', async () => {
    const w = await seedMixed();
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, minAgeMs: 3.5 * HOUR });
    expect(result.tallies.jobs?.deleted).toBe(1);
    expect(await remainingJobs()).toEqual(without(w.all, keys(w.defaultOld4h)));
  });

  it('with a minimum age of 0 deletes every succeeded GitRepo Job, and still no running, failed or foreign one', async () => {
    const w = await seedMixed();
    await cleanupGitJobs(runContext(kube), { ...defaults, minAgeMs: 0 });
    expect(await remainingJobs()).toEqual(keys(w.localRunning, w.localFailed, w.defaultFailed6h, w.defaultFailed3h, w.cron, w.plain));
  });

  it('keeps the keep-last newest succeeded Jobs of each GitRepo', async () => {
    const a = await seeder.gitRepo('fleet-local', 'a');
    const b = await seeder.gitRepo('fleet-default', 'b');
    const jobsA = await seedSucceeded(a, 5);
    const jobsB = await seedSucceeded(b, 2);
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, keepLast: 2 });
    expect(result.outcome).toBe('completed');
    expect(await remainingJobs()).toEqual(keys(jobsA[0]!, jobsA[1]!, ...jobsB));
    expect(kube.audits('delete').every((l) => l.gitrepo === 'fleet-local/a')).toBe(true);
  });

  it('with delete-failed deletes old failed Jobs but keeps the newest failed Job of each GitRepo', async () => {
    const w = await seedMixed();
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, deleteFailed: true });
    const gone = keys(w.localOld3h, w.localOld2h, w.defaultOld4h, w.otherOld2h, w.defaultFailed6h);
    expect(result.outcome).toBe('completed');
    expect(await remainingJobs()).toEqual(without(w.all, gone));
    expect(kube.audits('delete').find((l) => l.name === w.defaultFailed6h.job.metadata?.name)?.reason).toMatch(/^failed 6h(0m)? ago/);
  });

  it('touches only the namespaces it is given', async () => {
    const w = await seedMixed();
    server.requests.reset();
    await cleanupGitJobs(runContext(kube), { ...defaults, namespaces: ['fleet-default', 'another'] });
    expect(server.requests.list({ verb: 'list', resource: 'jobs' }).map((r) => r.namespace).sort()).toEqual(['another', 'fleet-default']);
    expect(await remainingJobs()).toEqual(without(w.all, keys(w.defaultOld4h, w.otherOld2h)));
  });

  it('in a dry run sends no delete and audits what it would delete', async () => {
    const w = await seedMixed();
    const result = await cleanupGitJobs(runContext(kube, { dryRun: true }), defaults);
    expect(deleteRequests()).toBe(0);
    expect(await remainingJobs()).toEqual(w.all);
    expect(result.tallies.jobs?.deleted).toBe(4);
    expect(kube.audits('would-delete').map((l) => `${l.namespace}/${l.name}`).sort()).toEqual(keys(w.localOld3h, w.localOld2h, w.defaultOld4h, w.otherOld2h));
    expect(kube.audits('delete')).toEqual([]);
  });

  it('leaves a Job replaced or changed between list and delete, as a logged skip', async () => {
    const repo = await seeder.gitRepo('fleet-local', 'app');
    const [replaced, changed, plain] = (await seedSucceeded(repo, 3)) as [SeededJob, SeededJob, SeededJob];
    const name = (s: SeededJob) => s.job.metadata?.name ?? '';
    let newUid: string | undefined;
    server.faults.add({
      verb: 'delete', resource: 'jobs', name: name(replaced), times: 1,
      before: async () => {
        await admin.batch.deleteNamespacedJob({ name: name(replaced), namespace: 'fleet-local', body: { propagationPolicy: 'Background' } });
        newUid = (await seeder.gitJob(repo, { name: name(replaced), state: 'succeeded', finishedAt: ago(5 * HOUR), withPod: false })).job.metadata?.uid;
      },
    });
    server.faults.add({
      verb: 'delete', resource: 'jobs', name: name(changed), times: 1,
      before: async () => {
        await admin.batch.patchNamespacedJob({ name: name(changed), namespace: 'fleet-local', body: [{ op: 'add', path: '/metadata/labels/touched', value: 'yes' }] });
      },
    });

    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 1, skipped: 2, errors: 0 } } });
    expect(await remainingJobs()).toEqual(keys(replaced, changed));
    const survivor = await admin.batch.readNamespacedJob({ name: name(replaced), namespace: 'fleet-local' });
    expect(survivor.metadata?.uid).toBe(newUid);
    expect(kube.audits('skip').map((l) => [l.name, l.reason]).sort()).toEqual([
      [name(changed), 'gone or changed since judged'],
      [name(replaced), 'gone or changed since judged'],
    ].sort());
    expect(kube.audits('delete').map((l) => l.name)).toEqual([name(plain)]);
  });

  it('follows a continue token whose page is empty: the selector matched nothing after a full page (etcd paging)', async () => {
    const repo = await seeder.gitRepo('another', 'app');
    const old = await seeder.gitJob(repo, { state: 'succeeded', finishedAt: ago(2 * HOUR), withPod: false });
    const failedRepo = await seeder.gitRepo('fleet-local', 'app');
    for (let i = 0; i < 2; i++) await seeder.gitJob(failedRepo, { state: 'failed', finishedAt: ago(3 * HOUR), withPod: false });
    server.requests.reset();
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, pageSize: 1 });
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 1, errors: 0 } } });
    expect(kube.audits('delete').map((l) => `${l.namespace}/${l.name}`)).toEqual([key(old)]);
    // first page: the one succeeded Job and a token (failed Jobs' keys follow); second page: empty, no token
    expect(server.requests.list({ verb: 'list', resource: 'jobs' }).map((r) => r.query.has('continue'))).toEqual([false, true]);
  });

  it('retries 429 (after Retry-After) and 503 answers and completes', async () => {
    const w = await seedMixed();
    const throttled = server.faults.add({ verb: 'delete', resource: 'jobs', status: 429, retryAfterSeconds: 1, times: 2 });
    const unavailable = server.faults.add({ verb: 'list', resource: 'jobs', status: 503, reason: 'ServiceUnavailable', times: 1 });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(throttled.hits).toBe(2);
    expect(unavailable.hits).toBe(1);
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 4, errors: 0 } } });
    expect(await remainingJobs()).toEqual(without(w.all, keys(w.localOld3h, w.localOld2h, w.defaultOld4h, w.otherOld2h)));
  });

  it('reports a Job that cannot be deleted (persistent 500) as partial, naming it, and deletes the others', async () => {
    const w = await seedMixed();
    const stuck = w.defaultOld4h.job.metadata?.name ?? '';
    server.faults.add({ verb: 'delete', resource: 'jobs', name: stuck, status: 500, reason: 'InternalError', message: 'etcdserver: request timed out' });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(new RegExp(`^delete jobs\\.batch fleet-default/${stuck}: 500 InternalError: etcdserver: request timed out \\(gave up after \\d+ attempts\\)$`));
    expect(result.tallies.jobs).toMatchObject({ deleted: 3, errors: 1 });
    expect(await remainingJobs()).toEqual(without(w.all, keys(w.localOld3h, w.localOld2h, w.otherOld2h)));
    expect(kube.lines.some((l) => l.level === 'error' && l.msg === result.cause)).toBe(true);
  });

  it('audits a delete whose answer was lost as a delete, confirmed by the NotFound of the retry', async () => {
    const [lost, ...rest] = await appWithOldJobs(3);
    const name = lost!.job.metadata?.name ?? '';
    // The first attempt is applied, then its answer is lost (a proxy's 504): the retry finds the Job gone.
    server.faults.add({
      verb: 'delete', resource: 'jobs', name, times: 1, status: 504, reason: 'Timeout',
      before: async () => {
        await admin.batch.deleteNamespacedJob({ name, namespace: 'fleet-local', propagationPolicy: 'Background' });
      },
    });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 3, skipped: 0, errors: 0 } } });
    expect(kube.audits('delete').find((l) => l.name === name)).toMatchObject({ confirmedBy: 'NotFound after a retried delete' });
    expect(await remainingJobs()).toEqual([]);
    expect(rest).toHaveLength(2);
  });

  it('does not claim a delete that something else made while our attempt was refused (503)', async () => {
    const [taken] = await appWithOldJobs(1);
    const name = taken!.job.metadata?.name ?? '';
    // A 503 was never applied: when the retry finds the Job gone, someone else deleted it.
    server.faults.add({
      verb: 'delete', resource: 'jobs', name, times: 1, status: 503,
      before: async () => {
        await admin.batch.deleteNamespacedJob({ name, namespace: 'fleet-local', propagationPolicy: 'Background' });
      },
    });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 0, skipped: 1 } } });
    expect(kube.audits('skip').map((l) => l.name)).toEqual([name]);
  });

  it('stops after ten deletes fail in a row instead of hammering a failing server', async () => {
    const jobs = await appWithOldJobs(30);
    server.faults.add({ verb: 'delete', resource: 'jobs', status: 500, reason: 'InternalError', message: 'etcdserver: leader changed' });
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, pageSize: 5 });
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/^gave up after 10 deletes failed in a row; the first: delete jobs\.batch fleet-local\/app-\w+: 500 InternalError: etcdserver: leader changed/);
    expect(result.tallies.jobs!.errors).toBeLessThan(jobs.length);
    expect(await remainingJobs()).toEqual(keys(...jobs));
  });

  it('stops when the API server refuses the credentials on delete', async () => {
    await appWithOldJobs(4);
    server.faults.add({ verb: 'delete', resource: 'jobs', status: 401, reason: 'Unauthorized', message: 'Unauthorized' });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/^the API server refused the credentials: delete jobs\.batch fleet-local\/app-\w+: 401 Unauthorized/);
    expect(result.tallies.jobs!.deleted).toBe(0);
  });

  it('a list still retrying when the budget is spent ends partial at once, without another attempt', async () => {
    await appWithOldJobs(3);
    const budget = new AbortController();
    // The server is slow and then failing: while the first attempt is out, the budget runs out.
    server.faults.add({ verb: 'list', resource: 'jobs', status: 503, latencyMs: 300, before: () => void setTimeout(() => budget.abort(), 50) });
    const slowKube = testKube(server.kubeconfig(), { backoffBaseMs: 2_000, backoffMaxMs: 2_000 });
    const result = await cleanupGitJobs(runContext(slowKube, { budget: budget.signal }), defaults);
    expect(result).toMatchObject({ outcome: 'partial', cause: 'time budget spent' });
    expect(server.requests.count({ verb: 'list', resource: 'jobs' })).toBe(1);
    expect(deleteRequests()).toBe(0);
  });

  it('a server that keeps refusing the Job list (429 storm) ends the phase partial with the cause, not failed', async () => {
    await appWithOldJobs(3);
    const storm = server.faults.add({ verb: 'list', resource: 'jobs', status: 429, reason: 'TooManyRequests', message: 'Too many requests, please try again later.' });
    const result = await cleanupGitJobs(runContext(kube), defaults);
    expect(storm.hits).toBe(5); // the first attempt and 4 retries
    expect(result.outcome).toBe('partial');
    expect(result.cause).toMatch(/^the API server is overloaded or unreachable: list jobs\.batch in all namespaces: 429 TooManyRequests: .*\(gave up after 5 attempts\)$/);
    expect(deleteRequests()).toBe(0);
  });

  it('fetches the next page while the current page is deleted, and holds no more than two pages', async () => {
    const jobs = await appWithOldJobs(30);
    const pages = [0, 1, 2].map((p) => keys(...jobs).slice(p * 10, p * 10 + 10).map((k) => k.split('/')[1]!));
    const atList: Array<{ started: number; answered: Set<string> }> = [];
    const answered = () => new Set(server.requests.list({ verb: 'delete', resource: 'jobs' }).filter((r) => r.status !== undefined).map((r) => r.name!));
    server.faults.add({ verb: 'list', resource: 'jobs', before: () => void atList.push({ started: deleteRequests(), answered: answered() }) });
    server.faults.add({ verb: 'delete', resource: 'jobs', latencyMs: 20 });
    const result = await cleanupGitJobs(runContext(testKube(server.kubeconfig(), { concurrency: 2, initialConcurrency: 2 })), { ...defaults, pageSize: 10 });
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 30 } } });
    expect(atList).toHaveLength(3);
    // Page 2 is asked for while page 1's deletes are under way ...
    expect(atList[1]!.started).toBeGreaterThan(0);
    expect(pages[0]!.every((n) => atList[1]!.answered.has(n))).toBe(false);
    // ... but page 3 only once every delete of page 1 has its answer (pages 2 and 3 held, not 1).
    expect(pages[0]!.every((n) => atList[2]!.answered.has(n))).toBe(true);
  });

  it('a stop drops the queued deletes at once: none is sent after it, even under a --qps ceiling', async () => {
    await appWithOldJobs(30);
    const budget = new AbortController();
    let sentAtStop = -1;
    server.faults.add({ verb: 'delete', resource: 'jobs', times: 1, before: () => {
      budget.abort();
      sentAtStop = deleteRequests();
    } });
    // A burst of 3, then 1 request per second on a clock that never moves: a delete waiting
    // for its token would wait forever, so the phase ends only if the stop drops them.
    const throttled = testKube(server.kubeconfig(), { qps: 1, burst: 3, concurrency: 8, clock: new FakeClock() });
    const result = await cleanupGitJobs(runContext(throttled, { budget: budget.signal }), defaults);
    expect(result).toMatchObject({ outcome: 'partial', cause: 'time budget spent' });
    expect(sentAtStop).toBeGreaterThan(0);
    expect(deleteRequests()).toBeLessThanOrEqual(3);
    expect(result.tallies.jobs!.deleted).toBe(deleteRequests());
  });

  it('fails without deleting anything when listing Jobs is forbidden', async () => {
    const w = await seedMixed();
    const forbidden = server.faults.add({ verb: 'list', resource: 'jobs', status: 403, reason: 'Forbidden', message: 'jobs.batch is forbidden: User "system:serviceaccount:cattle-fleet-system:fleet-cleanup" cannot list resource "jobs"' });
    for (const options of [defaults, { ...defaults, keepLast: 1 }, { ...defaults, namespaces: ['fleet-local'] }]) {
      const result = await cleanupGitJobs(runContext(kube), options);
      expect(result.outcome).toBe('failed');
      expect(result.cause).toMatch(/^list jobs\.batch (in all namespaces|in namespace fleet-local): 403 Forbidden: jobs\.batch is forbidden/);
    }
    expect(deleteRequests()).toBe(0);
    forbidden.remove();
    expect(await remainingJobs()).toEqual(w.all);
  });

  it('stops at the first forbidden delete and says RBAC forbids it', async () => {
    await appWithOldJobs(6);
    server.faults.add({ verb: 'delete', resource: 'jobs', status: 403, reason: 'Forbidden', message: 'cannot delete resource "jobs"' });
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, pageSize: 2 });
    expect(result.outcome).toBe('failed');
    expect(result.cause).toMatch(/^RBAC forbids deleting Jobs: delete jobs\.batch fleet-local\/app-[0-9a-f]{5}: 403 Forbidden/);
    expect(deleteRequests()).toBeLessThanOrEqual(2);
    expect((await remainingJobs()).length).toBe(6);
  });

  it('stops when the time budget is spent and reports partial', async () => {
    await appWithOldJobs(6);
    const budget = new AbortController();
    server.faults.add({ verb: 'delete', resource: 'jobs', times: 1, before: () => budget.abort() });
    const result = await cleanupGitJobs(runContext(kube, { budget: budget.signal }), { ...defaults, pageSize: 2 });
    expect(result).toMatchObject({ outcome: 'partial', cause: 'time budget spent' });
    expect(deleteRequests()).toBeLessThanOrEqual(2);
    expect((await remainingJobs()).length).toBeGreaterThanOrEqual(4);
  });

  it('names the reason of an abort that is not the time budget', async () => {
    await appWithOldJobs(1);
    const budget = new AbortController();
    budget.abort(new Error('lost the run lock to another pod'));
    const result = await cleanupGitJobs(runContext(kube, { budget: budget.signal }), defaults);
    expect(result).toMatchObject({ outcome: 'partial', cause: 'lost the run lock to another pod' });
    expect(deleteRequests()).toBe(0);
  });

  it('sends one delete per deleted Job and one list per page', async () => {
    await appWithOldJobs(30);
    server.requests.reset();
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, pageSize: 10 });
    expect(result.tallies.jobs?.deleted).toBe(30);
    expect(deleteRequests()).toBe(30);
    expect(server.requests.count({ verb: 'list', resource: 'jobs' })).toBeLessThanOrEqual(4);
    expect(server.requests.count({ verb: 'get', resource: 'jobs' })).toBe(0);
  });
});

describe('cleanupGitJobs with tiny pages and continue tokens that expire', () => {
  beforeEach(() => start({ continueTtlMs: 1 }));

  it('still deletes every eligible Job, in both passes', async () => {
    const w = await seedMixed();
    const extra = await seedSucceeded(w.repos.other, 4);
    // Slow lists so each continue token has expired by the time the next page is asked for.
    server.faults.add({ verb: 'list', resource: 'jobs', latencyMs: 5 });
    server.requests.reset();
    const result = await cleanupGitJobs(runContext(kube), { ...defaults, pageSize: 2, keepLast: 1, deleteFailed: true });

    // keep-last 1: the newest succeeded of each GitRepo stays (local: 10m, default: 4h, other: 2h);
    // the newest failed too (local: 5h, default: 3h).
    const gone = keys(w.localOld3h, w.localOld2h, w.defaultFailed6h, ...extra);
    const lists = server.requests.list({ verb: 'list', resource: 'jobs' });
    expect(lists.some((r) => r.status === 410)).toBe(true);
    expect(lists.every((r) => r.query.get('limit') === '2')).toBe(true);
    expect(result.outcome).toBe('completed');
    expect(await remainingJobs()).toEqual(without([...w.all, ...keys(...extra)].sort(), gone));
  });
});
