import { audit, type AuditRecord } from './audit.ts';
import type { Options } from './cli/options.ts';
import type { KubeAccess } from './kube/access.ts';
import { isRetryable, KubeApiError } from './kube/errors.ts';
import { messageOf } from './error-text.ts';
import type { Logger } from './log.ts';
import type { RunEvents } from './events/recorder.ts';
import type { ProgressTracker } from './progress/progress.ts';

/** Counts for one kind of object (Jobs, OCI artifacts, OCI secrets); they go into the marker's summary. */
export interface Tally {
  /** Deleted; in a dry run, the deletions planned. */
  deleted: number;
  kept: number;
  /** Judged deletable but left alone: gone or changed since judged, or in use again at the re-check. */
  skipped: number;
  errors: number;
}

export const emptyTally = (): Tally => ({ deleted: 0, kept: 0, skipped: 0, errors: 0 });

export type TallyKind = 'jobs' | 'ociArtifacts' | 'ociSecrets';

/**
 * Where a phase records what became of each object it judged: the tally of its kind and, for a
 * deletion (done, planned or skipped), the audit line. The one place where Events and metrics
 * plug in for every phase.
 */
export class Recorder {
  readonly #logger: Logger;
  readonly #tallies: Partial<Record<TallyKind, Tally>> = {};

  constructor(logger: Logger, kinds: readonly TallyKind[]) {
    this.#logger = logger;
    for (const kind of kinds) this.#tallies[kind] = emptyTally();
  }

  /** `count` objects of `kind` went `what`; with the audit line of the one it names. */
  record(kind: TallyKind, what: keyof Tally, line?: AuditRecord, count = 1): void {
    const tally = (this.#tallies[kind] ??= emptyTally());
    tally[what] += count;
    if (line) audit(this.#logger, line);
  }

  tally(kind: TallyKind): Tally {
    return (this.#tallies[kind] ??= emptyTally());
  }

  get tallies(): Partial<Record<TallyKind, Tally>> {
    return this.#tallies;
  }
}

/**
 * A deletion target: one folder (src/gitjobs, src/oci) and one registration in src/phases.ts.
 * It reads its own flags; `run` reports its own failures as its outcome.
 */
export interface Phase {
  name: string;
  /** Turned off by its --skip-<name> flag. */
  skipped(options: Options): boolean;
  run(ctx: RunContext, options: Options): Promise<PhaseResult>;
}

/**
 * How a phase ended. `partial`: it stopped short for a reason outside the cluster's state
 * (time budget spent, registry unreachable, an overloaded API server, some deletes failed) and
 * a later run finishes the work. `failed`: it could not judge safely for a reason a retry
 * cannot cure (a read forbidden, a CRD missing), so it deleted nothing from that point on.
 */
export type PhaseOutcome = 'completed' | 'partial' | 'failed' | 'skipped';

export interface PhaseResult {
  phase: string;
  outcome: PhaseOutcome;
  /** One line: why the phase was partial, failed or skipped. */
  cause?: string;
  tallies: Partial<Record<TallyKind, Tally>>;
}

/** What every phase gets from the run. */
export interface RunContext {
  access: KubeAccess;
  logger: Logger;
  /** Plan only: read, judge, print audit lines with action `would-delete`; change nothing. */
  dryRun: boolean;
  /** Aborts when the run's time budget is spent (or the lock is lost): stop between deletes, report partial. */
  budget: AbortSignal;
  now: () => Date;
  /**
   * A cause when this run may no longer delete: its lock is past its local deadline (a run
   * paused past its lock timeout may have been taken over). Checked right before each delete.
   */
  fence?: () => string | undefined;
  /** Kubernetes Events on the marker (absent in a dry run): what `kubectl get events` shows. */
  events?: RunEvents;
  /** Progress lines every 10 s on long work. */
  progress?: ProgressTracker;
}

/** Why a phase stopped early; the first one wins. */
export interface PhaseStop {
  outcome: 'partial' | 'failed';
  cause: string;
}

/** A stop that has to cross a call boundary (the sweep's in-use view could not be had): how the phase ends, and why. */
export class PhaseStopped extends Error {
  override readonly name: string = 'PhaseStopped';
  readonly stop: PhaseStop;
  constructor(stop: PhaseStop) {
    super(stop.cause);
    this.stop = stop;
  }
}

/** `time budget spent` for the run's own timeout; a reason given on purpose (lock lost, signal) is kept. */
export function budgetStop(budget: AbortSignal): PhaseStop {
  const reason: unknown = budget.reason;
  const generic = reason instanceof Error && (reason.name === 'AbortError' || reason.name === 'TimeoutError');
  const cause = typeof reason === 'string' ? reason : reason instanceof Error && !generic ? reason.message : 'time budget spent';
  return { outcome: 'partial', cause };
}

/**
 * A read the API server kept refusing (429, 5xx, no answer) after every retry: overload is not
 * the upgrade's fault, so the phase ends `partial` and the next run continues. Undefined for
 * anything else (403, 401, 404: `failed` is for what a retry cannot cure).
 */
export function overloadStop(err: unknown): PhaseStop | undefined {
  if (!(err instanceof KubeApiError) || !isRetryable(err)) return undefined;
  return { outcome: 'partial', cause: `the API server is overloaded or unreachable: ${messageOf(err)}` };
}
