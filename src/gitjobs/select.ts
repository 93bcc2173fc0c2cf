// Pure judgments about Fleet's GitRepo Jobs: which Job is one, what state it is in, when it
// finished, and whether it may go. No I/O here, so every rule is unit-tested on plain objects.
import type { V1Job } from '@kubernetes/client-node';
import { formatAge } from '../audit.ts';

export const GITREPO_API_VERSION = 'fleet.cattle.io/v1alpha1';

export type JobState = 'succeeded' | 'failed' | 'running';

/** The GitRepo a Job belongs to; `uid` identifies it, namespace/name are for people. */
export interface GitRepoRef {
  uid: string;
  namespace: string;
  name: string;
}

export const describeGitRepo = (repo: GitRepoRef): string => `${repo.namespace}/${repo.name}`;

/** Fleet's gitops controller sets exactly this owner; anything else is not ours to touch. */
export function gitRepoOf(job: V1Job): GitRepoRef | undefined {
  const owner = job.metadata?.ownerReferences?.find((o) => o.kind === 'GitRepo' && o.apiVersion === GITREPO_API_VERSION);
  if (!owner?.uid || !owner.name) return undefined;
  return { uid: owner.uid, namespace: job.metadata?.namespace ?? '', name: owner.name };
}

const conditionTrue = (job: V1Job, type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');

/** Failed wins over Complete should both ever be set: failed Jobs are the ones kept by default. */
export function jobState(job: V1Job): JobState {
  if (conditionTrue(job, 'Failed')) return 'failed';
  if (conditionTrue(job, 'Complete')) return 'succeeded';
  return 'running';
}

/** When the Job finished; undefined for running Jobs and for finished ones that do not say. */
export function finishedAt(job: V1Job): Date | undefined {
  const state = jobState(job);
  if (state === 'running') return undefined;
  const condition = conditionTrue(job, state === 'failed' ? 'Failed' : 'Complete');
  const at = condition?.lastTransitionTime ?? (state === 'succeeded' ? job.status?.completionTime : undefined);
  return validDate(at);
}

function validDate(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  // client-node deserializes date-time fields into Date; tests may hand in strings.
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** What decides "newest": the finish time, else the creation time; the name makes the order total. */
interface Rank {
  uid: string;
  at: number;
  name: string;
}

function rankOf(job: V1Job): Rank {
  const at = finishedAt(job) ?? validDate(job.metadata?.creationTimestamp);
  return { uid: job.metadata?.uid ?? '', at: at?.getTime() ?? 0, name: job.metadata?.name ?? '' };
}

const newer = (a: Rank, b: Rank): boolean => a.at > b.at || (a.at === b.at && a.name > b.name);

/** The `size` newest ranks seen, newest first; insertion is O(size), and size is small. */
class Newest {
  readonly #size: number;
  readonly ranks: Rank[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  offer(rank: Rank): void {
    if (this.ranks.some((r) => r.uid === rank.uid)) return;
    const at = this.ranks.findIndex((r) => newer(rank, r));
    if (at === -1) {
      if (this.ranks.length < this.#size) this.ranks.push(rank);
      return;
    }
    this.ranks.splice(at, 0, rank);
    if (this.ranks.length > this.#size) this.ranks.pop();
  }

  /**
   * Retained: among the newest seen, or newer than the weakest of them, or the list is not full.
   * The last two cover a Job that appeared (or finished) after the first pass: it is kept,
   * never deleted in place of one the first pass chose to keep.
   */
  retains(rank: Rank): boolean {
    const weakest = this.ranks[this.ranks.length - 1];
    if (this.ranks.length < this.#size || weakest === undefined) return true;
    return this.ranks.some((r) => r.uid === rank.uid) || newer(rank, weakest);
  }
}

/**
 * Per-GitRepo memory of the first pass: the `keepLast` newest succeeded Jobs and the newest
 * failed one of each GitRepo. Its size is O(GitRepos × (keepLast + 1)), never O(Jobs): the
 * second pass streams the Jobs again and asks `retention` about each.
 */
export class Retention {
  readonly keepLast: number;
  readonly keepNewestFailed: boolean;
  readonly #succeeded = new Map<string, Newest>();
  readonly #failed = new Map<string, Newest>();

  constructor(keepLast: number, keepNewestFailed: boolean) {
    this.keepLast = Math.max(0, Math.floor(keepLast));
    this.keepNewestFailed = keepNewestFailed;
  }

  /** True when there is anything to remember, i.e. when a first pass is needed at all. */
  get needsFirstPass(): boolean {
    return this.keepLast > 0 || this.keepNewestFailed;
  }

  /** First pass: remember the Job if it could be among the ones kept. */
  observe(job: V1Job): void {
    const repo = gitRepoOf(job);
    if (!repo || job.metadata?.deletionTimestamp) return;
    const group = this.#group(jobState(job));
    if (!group) return;
    let newest = group.map.get(repo.uid);
    if (!newest) group.map.set(repo.uid, (newest = new Newest(group.size)));
    newest.offer(rankOf(job));
  }

  /** Second pass: why the Job is kept by the keep rules, or undefined when they do not keep it. */
  retention(job: V1Job): string | undefined {
    const repo = gitRepoOf(job);
    const state = jobState(job);
    const group = this.#group(state);
    if (!repo || !group) return undefined;
    const newest = group.map.get(repo.uid) ?? new Newest(group.size);
    if (!newest.retains(rankOf(job))) return undefined;
    return state === 'failed'
      ? `newest failed of GitRepo ${describeGitRepo(repo)}`
      : `among the ${this.keepLast} newest succeeded of GitRepo ${describeGitRepo(repo)}`;
  }

  #group(state: JobState): { map: Map<string, Newest>; size: number } | undefined {
    if (state === 'succeeded' && this.keepLast > 0) return { map: this.#succeeded, size: this.keepLast };
    if (state === 'failed' && this.keepNewestFailed) return { map: this.#failed, size: 1 };
    return undefined;
  }
}

export interface JobPolicy {
  minAgeMs: number;
  deleteFailed: boolean;
}

export type Verdict =
  /** Not a GitRepo Job: never touched, not counted. */
  | { action: 'ignore'; reason: string }
  | { action: 'keep'; reason: string; gitRepo: GitRepoRef }
  | { action: 'delete'; reason: string; gitRepo: GitRepoRef; uid: string; resourceVersion: string };

/** The whole decision for one Job; `retention` is the first pass's memory (empty in one-pass mode). */
export function judgeJob(job: V1Job, policy: JobPolicy, now: Date, retention: Retention): Verdict {
  const gitRepo = gitRepoOf(job);
  if (!gitRepo) return { action: 'ignore', reason: 'not owned by a GitRepo' };
  const keep = (reason: string): Verdict => ({ action: 'keep', reason, gitRepo });
  if (job.metadata?.deletionTimestamp) return keep('already being deleted');
  const state = jobState(job);
  if (state === 'running') return keep('running');
  if (state === 'failed' && !policy.deleteFailed) return keep('failed: kept so its error stays visible');
  const retained = retention.retention(job);
  if (retained) return keep(retained);

  const minAge = `(min age ${formatAge(policy.minAgeMs)})`;
  const at = finishedAt(job);
  if (at === undefined && policy.minAgeMs > 0) return keep(`${state} at an unknown time ${minAge}`);
  const ageMs = at === undefined ? undefined : now.getTime() - at.getTime();
  if (ageMs !== undefined && ageMs < policy.minAgeMs) return keep(`${state} ${formatAge(ageMs)} ago ${minAge}`);

  const uid = job.metadata?.uid;
  const resourceVersion = job.metadata?.resourceVersion;
  // Without both, the delete could not prove the object is the one judged.
  if (!uid || !resourceVersion) return keep('no uid or resourceVersion to make the delete conditional');
  const when = ageMs === undefined ? 'at an unknown time' : `${formatAge(ageMs)} ago`;
  return { action: 'delete', reason: `${state} ${when} ${minAge}`, gitRepo, uid, resourceVersion };
}
