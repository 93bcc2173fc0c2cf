// Phase 1 of the job: delete the finished Jobs that Fleet's gitops controller leaves behind.
import type { V1Job } from '@kubernetes/client-node';
import { ConditionalDeleter, judged } from '../kube/conditional-delete.ts';
import { RequestAbandoned, type KubeOp } from '../kube/errors.ts';
import { listInPages } from '../kube/pager.ts';
import { budgetStop, overloadStop, Recorder, type Phase, type PhaseResult, type PhaseStop, type RunContext } from '../phase.ts';
import { describeGitRepo, judgeJob, Retention, type JobPolicy, type Verdict } from './select.ts';
import { messageOf } from '../error-text.ts';

export interface GitJobOptions {
  namespaces: string[] | 'all';
  /** Since completion (Complete condition / completionTime; Failed condition lastTransitionTime). */
  minAgeMs: number;
  /** Succeeded Jobs kept per GitRepo, newest first. */
  keepLast: number;
  /** Also delete failed Jobs, always keeping the newest failed Job of each GitRepo. */
  deleteFailed: boolean;
  pageSize: number;
}

const PHASE = 'gitjobs';


/**
 * Streams Jobs page by page and deletes the eligible ones, each delete conditional on the uid
 * and resourceVersion of the Job as judged.
 *
 * Memory: one page at a time. With `keepLast > 0` or `deleteFailed`, a first streaming pass
 * remembers only the keepLast newest succeeded and the newest failed Job per GitRepo (by owner
 * uid), O(GitRepos × (keepLast + 1)); a second streaming pass judges and deletes. Otherwise
 * there is a single pass. Never O(Jobs).
 */
export async function cleanupGitJobs(ctx: RunContext, options: GitJobOptions): Promise<PhaseResult> {
  const rec = new Recorder(ctx.logger, ['jobs']);
  const result = (stop?: PhaseStop): PhaseResult => ({
    phase: PHASE,
    outcome: stop?.outcome ?? 'completed',
    ...(stop ? { cause: stop.cause } : {}),
    tallies: rec.tallies,
  });
  const policy: JobPolicy = { minAgeMs: options.minAgeMs, deleteFailed: options.deleteFailed };
  const retention = new Retention(options.keepLast, options.deleteFailed);
  const sources = jobSources(ctx, options);

  // Pass 1 (only when a keep rule needs it). Any failure here means nothing is deleted.
  if (retention.needsFirstPass) {
    ctx.progress?.track(`${PHASE} first pass (--keep-last/--delete-failed)`, rec.tally('jobs'));
    try {
      for (const source of sources) {
        for await (const page of source()) {
          if (ctx.budget.aborted) return result(budgetStop(ctx.budget));
          ctx.progress?.listed(page.length);
          for (const job of page) retention.observe(job);
        }
      }
    } catch (err) {
      return result(listStop(err, ctx.budget));
    }
  }

  // Pipelined: the next page is fetched while this page's deletes run, and a page's deletes
  // start while the previous page's last ones finish; never more than two pages are held.
  if (retention.needsFirstPass) ctx.progress?.secondPass(PHASE);
  else ctx.progress?.track(PHASE, rec.tally('jobs'));
  const deleter = new PageDeleter(ctx, rec);
  const halted = () => deleter.stop !== undefined || ctx.budget.aborted;
  let draining: Promise<void> = Promise.resolve();
  let listedAll = true;
  try {
    for (const source of sources) {
      const pages = source();
      let next: Promise<IteratorResult<V1Job[]>> | undefined = pages.next();
      while (next) {
        const { value: page, done } = await next;
        next = undefined;
        if (done) break;
        if (halted()) {
          listedAll = false;
          break;
        }
        ctx.progress?.listed(page.length);
        const running = deleter.run(page.map((job) => ({ job, verdict: judgeJob(job, policy, ctx.now(), retention) })));
        await draining;
        draining = running;
        if (!halted()) next = pages.next();
        else listedAll = false;
      }
      if (halted()) {
        listedAll = false;
        break;
      }
    }
    await draining;
  } catch (err) {
    // A list failed (or was abandoned): the deletes already under way finish and are counted.
    await draining;
    return result(deleter.stop ?? listStop(err, ctx.budget));
  }
  ctx.logger.debug({ phase: PHASE, tally: rec.tally('jobs') }, 'gitjobs phase done');
  return result(deleter.stop ?? (listedAll ? undefined : budgetStop(ctx.budget)) ?? deleter.errorStop());
}

export const gitJobsPhase: Phase = {
  name: PHASE,
  skipped: (options) => options.skipGitjobs,
  run: (ctx, options) =>
    cleanupGitJobs(ctx, { namespaces: options.jobNamespaces, minAgeMs: options.minAgeMs, keepLast: options.keepLast, deleteFailed: options.deleteFailed, pageSize: options.pageSize }),
};

type JobSource = () => AsyncGenerator<V1Job[]>;

/** One paged list per namespace, or one across all namespaces. */
function jobSources(ctx: RunContext, options: GitJobOptions): JobSource[] {
  const { access, logger } = ctx;
  // Fleet's Jobs run one pod with backoffLimit 0, so a succeeded one has succeeded=1. The
  // selector only narrows what the server sends; every item is still judged here.
  const fieldSelector = options.deleteFailed ? undefined : 'status.successful=1';
  const pager = { pageSize: options.pageSize, logger, signal: ctx.budget };
  if (options.namespaces === 'all') {
    const op: KubeOp = { verb: 'list', resource: 'jobs.batch' };
    return [() => listInPages<V1Job>(access, op, (page, o) => access.batch.listJobForAllNamespaces({ limit: page.limit, _continue: page._continue, fieldSelector }, o), pager)];
  }
  return [...new Set(options.namespaces)].map((namespace) => {
    const op: KubeOp = { verb: 'list', resource: 'jobs.batch', namespace };
    return () => listInPages<V1Job>(access, op, (page, o) => access.batch.listNamespacedJob({ namespace, limit: page.limit, _continue: page._continue, fieldSelector }, o), pager);
  });
}

/**
 * A list that failed: nothing more is judged. A list the budget stopped is `partial`, and so
 * is one the server kept refusing (overloadStop); `failed` is for what retrying cannot cure (RBAC).
 */
function listStop(err: unknown, budget: AbortSignal): PhaseStop {
  if (err instanceof RequestAbandoned) return budgetStop(budget);
  return overloadStop(err) ?? { outcome: 'failed', cause: messageOf(err) };
}

type JudgedJob = { job: V1Job; verdict: Verdict };

/** Runs the deletes of one page concurrently; records each outcome and keeps the stop. */
class PageDeleter {
  readonly #ctx: RunContext;
  readonly #rec: Recorder;
  readonly #deleter: ConditionalDeleter;
  #firstError: string | undefined;

  constructor(ctx: RunContext, rec: Recorder) {
    this.#ctx = ctx;
    this.#rec = rec;
    this.#deleter = new ConditionalDeleter({ access: ctx.access, logger: ctx.logger, budget: ctx.budget, ...(ctx.fence ? { fence: ctx.fence } : {}) });
  }

  get stop(): PhaseStop | undefined {
    return this.#deleter.stop;
  }

  async run(page: JudgedJob[]): Promise<void> {
    const deletes: Array<Promise<void>> = [];
    for (const { job, verdict } of page) {
      if (verdict.action === 'ignore') continue;
      const meta = job.metadata ?? {};
      if (verdict.action === 'keep') {
        this.#rec.record('jobs', 'kept');
        this.#ctx.logger.debug({ namespace: meta.namespace, name: meta.name, gitrepo: describeGitRepo(verdict.gitRepo), reason: verdict.reason }, 'kept Job');
        continue;
      }
      deletes.push(this.#delete(job, verdict));
    }
    await Promise.all(deletes);
  }

  /** The first delete error as the cause of a `partial` outcome, when some deletes failed. */
  errorStop(): PhaseStop | undefined {
    if (!this.#firstError) return undefined;
    const { errors } = this.#rec.tally('jobs');
    const more = errors > 1 ? ` (and ${errors - 1} more failed deletes)` : '';
    return { outcome: 'partial', cause: `${this.#firstError}${more}` };
  }

  async #delete(job: V1Job, verdict: Extract<Verdict, { action: 'delete' }>): Promise<void> {
    const { access, logger, dryRun } = this.#ctx;
    const meta = job.metadata ?? {};
    const record = { kind: 'Job', namespace: meta.namespace ?? '', name: meta.name ?? '', uid: verdict.uid, gitrepo: describeGitRepo(verdict.gitRepo), reason: verdict.reason };
    if (this.stop) return;
    const object = judged(meta);
    if (!object) {
      logger.warn({ namespace: record.namespace, name: record.name }, `Job ${record.namespace}/${record.name} has no uid or resourceVersion: a delete could not be conditional, kept`);
      this.#rec.record('jobs', 'kept');
      return;
    }
    if (dryRun) {
      this.#rec.record('jobs', 'deleted', { action: 'would-delete', ...record });
      return;
    }
    const result = await this.#deleter.delete({
      resource: 'jobs.batch',
      noun: 'Jobs',
      object,
      options: { propagationPolicy: 'Background' },
      send: (body, requestOptions) => access.batch.deleteNamespacedJob({ name: object.name, namespace: object.namespace, body }, requestOptions),
    });
    switch (result.outcome) {
      case 'deleted':
        this.#rec.record('jobs', 'deleted', { action: 'delete', ...record, ...(result.confirmedBy ? { confirmedBy: result.confirmedBy } : {}) });
        return;
      case 'skipped':
        this.#rec.record('jobs', 'skipped', { ...record, action: 'skip', reason: result.reason, judged: record.reason });
        return;
      case 'failed':
        this.#rec.record('jobs', 'errors');
        this.#firstError ??= result.message;
        return;
      case 'refused':
      case 'not-sent':
        return;
    }
  }
}
