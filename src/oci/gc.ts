// Phase 2 of the job: garbage-collect Fleet's OCI bundle storage. Mark what is in use, find
// candidates (stale per-bundle secrets, orphans in the registries' catalogs), plan with a grace
// period and a mass-delete brake, then sweep after a fresh re-check. Any doubt keeps the artifact.
import { budgetStop, overloadStop, PhaseStopped, Recorder, type Phase, type PhaseOutcome, type PhaseResult, type PhaseStop, type RunContext } from '../phase.ts';
import { addCatalogOrphans, anyStorageSecret, collectSecretCandidates, type CandidateSet } from './candidates.ts';
import { markInUse } from './mark.ts';
import { judgeCandidates, type Judgement, type KeepReason } from './plan.ts';
import { brakeCause } from './rules.ts';
import { RegistryPool } from './registries.ts';
import { InUseWatch } from './in-use.ts';
import { FreshRead } from './fresh-read.ts';
import { artifactAudit, Sweeper, type Deletion } from './sweep.ts';
import { messageOf } from '../error-text.ts';

export interface OciOptions {
  /** Artifacts younger than this are kept: Fleet pushes an artifact before it writes the Bundle. */
  minAgeMs: number;
  allowMassDelete: boolean;
  /** Brake: refuse when the plan deletes more than this share of all known Fleet artifacts ... */
  massDeleteRatio: number;
  /** ... and more than this many. */
  massDeleteMin: number;
  registryTimeoutMs: number;
  pageSize: number;
  /** timeoutSeconds of each watch that keeps the in-use view current (re-opened when the server ends it). Default 20. */
  watchTimeoutSeconds?: number;
  /** Artifacts read or deleted at once (`--registry-concurrency`). Default 16. */
  registryConcurrency?: number;
  /** Extra attempts of a registry request on transient failures. Default 3. */
  registryRetries?: number;
  /** Base of the registry retry backoff (ms); tests shorten it. Default 200. */
  registryBackoffBaseMs?: number;
}

const PHASE = 'oci';

export async function collectOciGarbage(ctx: RunContext, options: OciOptions): Promise<PhaseResult> {
  const { access, logger } = ctx;
  const rec = new Recorder(logger, ['ociArtifacts', 'ociSecrets']);
  const result = (outcome: PhaseOutcome, cause?: string): PhaseResult => ({
    phase: PHASE,
    outcome,
    ...(cause ? { cause } : {}),
    tallies: outcome === 'skipped' ? {} : rec.tallies,
  });
  const secretListFailed = (err: unknown): PhaseResult => {
    const stop = overloadStop(err) ?? { outcome: 'failed', cause: `cannot list OCI storage secrets: ${messageOf(err)}` };
    return result(stop.outcome, stop.cause);
  };
  const mark = () => markInUse(access, { pageSize: options.pageSize, logger, budget: ctx.budget });

  try {
    if (!(await anyStorageSecret(access, { logger }))) return result('skipped', 'no OCI storage secret in any namespace');
  } catch (err) {
    return secretListFailed(err);
  }
  const marked = await mark();
  if (!marked.ok) return result(marked.outcome, marked.cause);
  const inUse = marked.inUse;
  rec.record('ociArtifacts', 'kept', undefined, inUse.ociCount);
  // From the lists' versions on, every change to a Bundle or BundleDeployment reaches the view
  // the sweep judges each delete by (a dry run deletes nothing and needs none).
  const watch = ctx.dryRun ? undefined : new InUseWatch(access, marked.view, { logger, ...(options.watchTimeoutSeconds !== undefined ? { timeoutSeconds: options.watchTimeoutSeconds } : {}) });
  watch?.start(marked.resourceVersions);

  const concurrency = options.registryConcurrency ?? 16;
  const pool = new RegistryPool({
    concurrency,
    timeoutMs: options.registryTimeoutMs,
    retries: options.registryRetries ?? 3,
    wantDelete: !ctx.dryRun,
    logger,
    signal: ctx.budget,
    ...(options.registryBackoffBaseMs !== undefined ? { backoffBaseMs: options.registryBackoffBaseMs } : {}),
  });
  const keptFor = new Map<KeepReason, number>();
  try {
    let set: CandidateSet;
    try {
      set = await collectSecretCandidates(access, inUse, pool, { pageSize: options.pageSize, logger });
    } catch (err) {
      return secretListFailed(err);
    }
    rec.record('ociSecrets', 'kept', undefined, set.secretsKept);
    rec.record('ociArtifacts', 'kept', undefined, set.held.size);
    const searched = await addCatalogOrphans(pool, set, inUse, { pageSize: options.pageSize, logger, budget: ctx.budget });

    const judgements = await judgeCandidates(set.candidates.values(), pool, { minAgeMs: options.minAgeMs, now: ctx.now, logger, budget: ctx.budget, concurrency });
    const deletions: Deletion[] = [];
    let existing = 0;
    for (const j of judgements) {
      if (j.action !== 'ignore') existing++;
      if (j.action === 'delete' || j.action === 'secrets-only') deletions.push(j);
      else if (j.action === 'keep') keep(j, rec, keptFor, pool);
    }
    // Secrets-only deletions count as artifacts: a registry answering 404 for everything must not strip every secret.
    const planned = deletions.length;
    const missing = deletions.filter((d) => d.action === 'secrets-only').length;
    const known = inUse.ociCount + existing;
    const brake = options.allowMassDelete
      ? undefined
      : brakeCause({ planned, missing, known, inUse: inUse.ociCount, ratio: options.massDeleteRatio, min: options.massDeleteMin });

    let stop: PhaseStop | undefined;
    if (ctx.dryRun) {
      reportPlan(pool, deletions, rec);
      if (brake) logger.warn({ phase: PHASE }, `${brake} (dry run: a real run would stop here)`);
    } else if (brake) {
      logger.warn({ phase: PHASE, planned, missing, known, inUse: inUse.ociCount }, brake);
      ctx.events?.record('Warning', 'MassDeleteBrake', brake);
      for (const d of deletions) {
        if (d.action === 'delete') rec.record('ociArtifacts', 'kept');
        rec.record('ociSecrets', 'kept', undefined, d.candidate.secrets.length);
      }
    } else if (deletions.length > 0 && watch) {
      // The watch alone lags by the events still on the wire: a Bundle acknowledged a moment ago
      // may not be in it yet. Each delete is also checked against a fresh read of every Bundle
      // and BundleDeployment (as the TTL controller re-reads before it deletes); a failed read
      // stops the sweep like a broken watch (`partial` when the server was overloaded). Checks
      // asked while a read is in flight share the next one (fresh-read.ts).
      const freshRead = new FreshRead(mark);
      const freshlyChecked = {
        current: async () => {
          const fresh = await freshRead.get();
          if (!fresh.ok) throw new PhaseStopped({ outcome: fresh.outcome === 'partial' ? 'partial' : 'failed', cause: `re-reading what is in use before a delete: ${fresh.cause}` });
          // The watch is asked after the read, not before: a watch the server closed while the
          // read was on its way is then seen as broken, and nothing more is deleted.
          const view = await watch.current();
          return { has: (id: string) => view.has(id) || fresh.inUse.has(id) };
        },
        watched: () => watch.current(),
      };
      const sweeper = new Sweeper(ctx, pool, freshlyChecked, rec);
      ctx.progress?.track(`${PHASE} sweep`, rec.tally('ociArtifacts'), deletions.length);
      await sweeper.run(deletions, { concurrency });
      stop = sweeper.outcome();
    }

    const causes = [
      ...(brake ? [ctx.dryRun ? `${brake} (dry run)` : brake] : []),
      ...(stop ? [stop.cause] : []),
      ...pool.failures(),
      // Stopped early before the sweep (orphan search or plan cut short): the budget's cause.
      ...((keptFor.get('budget') || !searched) && !stop ? [budgetStop(ctx.budget).cause] : []),
      ...(keptFor.get('read-error') ? [`${keptFor.get('read-error')} artifact(s) could not be read and were kept (see the warnings)`] : []),
    ];
    for (const failure of pool.failures()) ctx.events?.record('Warning', 'RegistryFailed', failure);
    const outcome: PhaseOutcome = stop?.outcome === 'failed' ? 'failed' : causes.length > 0 ? 'partial' : 'completed';
    return result(outcome, causes.length > 0 ? causes.join('; ') : undefined);
  } catch (err) {
    // Unexpected: stop here rather than guess.
    return result('failed', `oci storage phase stopped: ${messageOf(err)}`);
  } finally {
    watch?.close();
    await pool.close();
    logger.info(
      { phase: PHASE, inUse: inUse.size, artifacts: rec.tally('ociArtifacts'), secrets: rec.tally('ociSecrets'), keptFor: Object.fromEntries(keptFor), registryRequests: pool.requestCount, registryConnections: pool.connectionCount },
      'oci storage phase done',
    );
  }
}

function keep(j: Extract<Judgement, { action: 'keep' }>, rec: Recorder, keptFor: Map<KeepReason, number>, pool: RegistryPool): void {
  rec.record('ociArtifacts', 'kept');
  rec.record('ociSecrets', 'kept', undefined, j.candidate.secrets.length);
  keptFor.set(j.why, (keptFor.get(j.why) ?? 0) + 1);
  if (j.why === 'registry-down') pool.keptForFailure(j.candidate.registry);
  if (j.why === 'read-error') rec.record('ociArtifacts', 'errors');
}

/** Dry run: the plan as audit lines, nothing changed. */
function reportPlan(pool: RegistryPool, deletions: Deletion[], rec: Recorder): void {
  for (const d of deletions) {
    if (d.action === 'delete') {
      rec.record('ociArtifacts', 'deleted', { action: 'would-delete', ...artifactAudit(pool, d) });
    }
    for (const s of d.candidate.secrets) {
      rec.record('ociSecrets', 'deleted', { action: 'would-delete', kind: 'Secret', namespace: s.object.namespace, name: s.object.name, uid: s.object.uid, reason: `OCI storage secret of stale artifact ${d.candidate.contentsId}` });
    }
  }
}

export const ociPhase: Phase = {
  name: PHASE,
  skipped: (options) => options.skipOci,
  run: (ctx, options) =>
    collectOciGarbage(ctx, {
      minAgeMs: options.ociMinAgeMs, allowMassDelete: options.allowMassDelete, massDeleteRatio: options.massDeleteRatio,
      massDeleteMin: options.massDeleteMin, registryTimeoutMs: options.registryTimeoutMs, pageSize: options.pageSize,
      registryConcurrency: options.registryConcurrency,
    }),
};
