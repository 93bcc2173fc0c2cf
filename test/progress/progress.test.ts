// Progress lines: a fake clock and a fake timer drive the ticks (no sleeps). What an operator
// reads on stderr every 10 s, and the JSON line beside it, during the real GitRepo Job phase
// (both passes of --keep-last) against the API test server.
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupGitJobs } from '../../src/gitjobs/cleanup.ts';
import { Progress, type ProgressClock, type ProgressTracker } from '../../src/progress/progress.ts';
import { emptyTally } from '../../src/phase.ts';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { FleetSeeder, installFleetCrds } from '../fixtures/fleet-objects.ts';
import { captureLogs, runContext, testKube } from '../fixtures/kube.ts';

/** A clock that moves only when told, and a timer whose ticks the test fires. */
function fakeClock() {
  let now = 0;
  const ticks: Array<{ ms: number; tick: () => void }> = [];
  let cancelled = 0;
  const clock: ProgressClock = {
    now: () => now,
    every: (ms, tick) => {
      ticks.push({ ms, tick });
      return () => void cancelled++;
    },
  };
  return { clock, advance: (ms: number) => (now += ms), fire: () => ticks.forEach((t) => t.tick()), ticks, cancelled: () => cancelled };
}

describe('progress lines', () => {
  it('every 10 s: listed, deleted, kept, the delete rate, and the time left when the total is known', () => {
    const logs = captureLogs('info');
    const said: string[] = [];
    const t = fakeClock();
    const progress = new Progress({ logger: logs.logger, say: (l) => said.push(l), dryRun: false, clock: t.clock });
    expect(t.ticks.map((x) => x.ms)).toEqual([10_000]);

    t.fire();
    expect(said).toEqual([]); // nothing tracked yet: nothing to say

    const tally = { ...emptyTally(), kept: 3 }; // counted before this stretch: not part of it
    progress.track('oci sweep', tally, 400);
    t.advance(10_000);
    tally.deleted += 100;
    tally.skipped += 2;
    tally.kept += 2;
    t.fire();
    expect(said.at(-1)).toBe('progress oci sweep: listed 0, deleted 100, kept 2, skipped 2; 10 deleted/s; about 28s left');
    expect(logs.lines.at(-1)).toMatchObject({
      level: 'info', msg: 'progress oci sweep',
      progress: { phase: 'oci sweep', listed: 0, deleted: 100, kept: 2, skipped: 2, errors: 0, ratePerSecond: 10, etaSeconds: 28 },
    });

    progress.idle();
    t.fire();
    expect(said).toHaveLength(1);
    progress.stop();
    expect(t.cancelled()).toBe(1);
  });

  it('without a known total there is no ETA; a dry run says planned', () => {
    const logs = captureLogs('info');
    const said: string[] = [];
    const t = fakeClock();
    const progress = new Progress({ logger: logs.logger, say: (l) => said.push(l), dryRun: true, clock: t.clock });
    const tally = emptyTally();
    progress.track('gitjobs', tally);
    progress.listed(500);
    tally.deleted = 398;
    tally.kept = 20;
    t.advance(20_000);
    progress.report();
    expect(said).toEqual(['progress gitjobs: listed 500, would delete 398, kept 20; 19.9 planned/s']);
    expect(logs.lines.at(-1)?.progress).not.toHaveProperty('etaSeconds');
  });
});

describe('progress of the GitRepo Job phase', () => {
  let server: TestApiServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('reports during the first pass of --keep-last too, and in the second pass knows the time left', async () => {
    server = await startApiServer();
    const kube = testKube(server.kubeconfig(), { level: 'info' });
    await installFleetCrds(kube.kubeConfig);
    const seeder = new FleetSeeder(kube.kubeConfig);
    await seeder.namespace('fleet-default');
    const repo = await seeder.gitRepo('fleet-default', 'apps');
    const finishedAt = new Date(Date.now() - 2 * 3_600_000);
    for (let i = 0; i < 12; i++) await seeder.gitJob(repo, { state: 'succeeded', finishedAt, commit: `c${i}`, withPod: false });

    const said: string[] = [];
    const t = fakeClock();
    const progress = new Progress({ logger: kube.logger, say: (l) => said.push(l), dryRun: false, clock: t.clock });
    // Ten seconds pass with every page, and the timer fires after each: a slow list, without waiting for it.
    const ticking: ProgressTracker = {
      track: (...a) => progress.track(...a),
      secondPass: (l) => progress.secondPass(l),
      idle: () => progress.idle(),
      listed: (n) => {
        progress.listed(n);
        t.advance(10_000);
        t.fire();
      },
    };
    const result = await cleanupGitJobs(runContext(kube, { progress: ticking }), { namespaces: 'all', minAgeMs: 3_600_000, keepLast: 2, deleteFailed: false, pageSize: 5 });
    progress.stop();
    expect(result).toMatchObject({ outcome: 'completed', tallies: { jobs: { deleted: 10, kept: 2 } } });

    const first = said.filter((l) => l.startsWith('progress gitjobs first pass'));
    expect(first).toEqual([
      'progress gitjobs first pass (--keep-last/--delete-failed): listed 5, deleted 0, kept 0; 0 deleted/s',
      'progress gitjobs first pass (--keep-last/--delete-failed): listed 10, deleted 0, kept 0; 0 deleted/s',
      'progress gitjobs first pass (--keep-last/--delete-failed): listed 12, deleted 0, kept 0; 0 deleted/s',
    ]);
    const second = said.filter((l) => l.startsWith('progress gitjobs:'));
    // 12 Jobs to go through, as many as the first pass listed; a page's deletes land after its tick.
    expect(second).toEqual([
      'progress gitjobs: listed 5, deleted 0, kept 0; 0 deleted/s; about 14s left',
      'progress gitjobs: listed 10, deleted 5, kept 0; 0.3 deleted/s; about 4s left',
      'progress gitjobs: listed 12, deleted 10, kept 0; 0.3 deleted/s; about 0s left',
    ]);
    expect(kube.lines.filter((l) => l.msg === 'progress gitjobs').at(-1)).toMatchObject({ progress: { phase: 'gitjobs', listed: 12, etaSeconds: 0 } });
  });
});
