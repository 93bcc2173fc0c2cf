// A believable Fleet management cluster for the demo: GitRepos in fleet-local and
// fleet-default with a history of clone Jobs, and Jobs that belong to other things.
import type { FleetSeeder, JobState, SeededJob } from '../fixtures/fleet-objects.ts';

export interface SeededJobRecord {
  namespace: string;
  name: string;
  /** What a person would call it in the report, e.g. `GitRepo Job, succeeded over 1h ago`. */
  label: string;
  pod?: string;
}

interface RepoHistory {
  namespace: string;
  name: string;
  /** Succeeded Jobs finished hours to days ago. */
  oldSucceeded: number;
  /** Succeeded Jobs finished minutes ago (younger than the default --min-age of 1h). */
  recentSucceeded: number;
  failed: number;
  running: number;
}

const HISTORY: RepoHistory[] = [
  { namespace: 'fleet-local', name: 'local-infra', oldSucceeded: 8, recentSucceeded: 0, failed: 1, running: 0 },
  { namespace: 'fleet-default', name: 'apps', oldSucceeded: 15, recentSucceeded: 2, failed: 3, running: 1 },
  { namespace: 'fleet-default', name: 'monitoring', oldSucceeded: 10, recentSucceeded: 0, failed: 1, running: 1 },
  { namespace: 'fleet-default', name: 'edge-config', oldSucceeded: 6, recentSucceeded: 0, failed: 0, running: 0 },
];

const HOUR = 3_600_000;

export async function seedFleet(seeder: FleetSeeder): Promise<{ gitRepos: number; jobs: SeededJobRecord[] }> {
  const jobs: SeededJobRecord[] = [];
  const record = (seeded: SeededJob, label: string) => {
    jobs.push({
      namespace: seeded.job.metadata?.namespace ?? '',
      name: seeded.job.metadata?.name ?? '',
      label,
      ...(seeded.pod?.metadata?.name ? { pod: seeded.pod.metadata.name } : {}),
    });
  };
  const now = Date.now();

  for (const history of HISTORY) {
    await seeder.namespace(history.namespace);
    const repo = await seeder.gitRepo(history.namespace, history.name);
    const add = async (state: JobState, finishedAt: Date, label: string, generation: number) =>
      record(await seeder.gitJob(repo, { state, finishedAt, generation }), label);
    let generation = 1;
    // Oldest first, a few hours apart, as a GitRepo's history accumulates.
    for (let i = history.oldSucceeded; i > 0; i--) await add('succeeded', new Date(now - (2 + 5 * i) * HOUR), 'GitRepo Job, succeeded over 1h ago', generation++);
    for (let i = 0; i < history.failed; i++) await add('failed', new Date(now - (3 + 7 * i) * HOUR), 'GitRepo Job, failed', generation++);
    for (let i = history.recentSucceeded; i > 0; i--) await add('succeeded', new Date(now - 10 * i * 60_000), 'GitRepo Job, succeeded minutes ago', generation++);
    for (let i = 0; i < history.running; i++) await add('running', new Date(now), 'GitRepo Job, running', generation++);
  }

  // Jobs that are not Fleet's GitRepo Jobs: never touched, however old.
  await seeder.namespace('cattle-system');
  record(await seeder.cronJobJob('fleet-default', 'nightly-backup', { state: 'succeeded', finishedAt: new Date(now - 30 * HOUR) }), 'Job owned by a CronJob, succeeded');
  record(await seeder.plainJob('cattle-system', 'helm-operation-x7k2p', { state: 'succeeded', finishedAt: new Date(now - 48 * HOUR) }), 'Job owned by nothing, succeeded');

  return { gitRepos: HISTORY.length, jobs };
}
