// Progress on long work: every 10 s, one readable line on stderr and one JSON log line with
// what was listed, deleted and kept so far, the delete rate and, when the amount of work is
// known (the second pass of --keep-last, the OCI sweep), the time left.
import { formatAge } from '../audit.ts';
import type { Logger } from '../log.ts';

/** Counts a phase keeps anyway (a Tally): progress reads them, it never writes them. */
export interface Counts {
  deleted: number;
  kept: number;
  skipped: number;
  errors: number;
}

/** Time and a repeating timer, injectable so that tests drive ticks without sleeping. */
export interface ProgressClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `tick` every `ms`; returns the function that stops it. */
  every(ms: number, tick: () => void): () => void;
}

export const systemClock: ProgressClock = {
  now: () => performance.now(),
  every: (ms, tick) => {
    const timer = setInterval(tick, ms).unref();
    return () => clearInterval(timer);
  },
};

/** What phases see (RunContext.progress). */
export interface ProgressTracker {
  /** A new stretch of work: `counts` is the phase's tally; `total`, when known, the items it will go through. */
  track(label: string, counts: Counts, total?: number): void;
  /** A second pass over the items the stretch before listed: same tally, the total is now known. */
  secondPass(label: string): void;
  /** Items listed (judged) in this stretch. */
  listed(n: number): void;
  /** The stretch is over; nothing is reported until the next one. */
  idle(): void;
}

export interface ProgressSnapshot {
  phase: string;
  listed: number;
  deleted: number;
  kept: number;
  skipped: number;
  errors: number;
  /** Deletes per second in this stretch. */
  ratePerSecond: number;
  /** Seconds left, when the total is known and work has started. */
  etaSeconds?: number;
}

export interface ProgressOptions {
  logger: Logger;
  /** The readable line (stderr). */
  say: (line: string) => void;
  dryRun: boolean;
  clock?: ProgressClock;
  intervalMs?: number;
}

interface Stretch {
  label: string;
  counts: Counts;
  base: Counts;
  startedAt: number;
  listed: number;
  total: number | undefined;
}

export class Progress implements ProgressTracker {
  readonly #options: ProgressOptions;
  readonly #clock: ProgressClock;
  readonly #cancel: () => void;
  #stretch: Stretch | undefined;

  constructor(options: ProgressOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#cancel = this.#clock.every(options.intervalMs ?? 10_000, () => this.report());
  }

  track(label: string, counts: Counts, total?: number): void {
    this.#stretch = { label, counts, base: { ...counts }, startedAt: this.#clock.now(), listed: 0, total };
  }

  secondPass(label: string): void {
    const before = this.#stretch;
    if (!before) return;
    this.track(label, before.counts, before.listed);
  }

  listed(n: number): void {
    if (this.#stretch) this.#stretch.listed += n;
  }

  idle(): void {
    this.#stretch = undefined;
  }

  stop(): void {
    this.#cancel();
    this.#stretch = undefined;
  }

  snapshot(): ProgressSnapshot | undefined {
    const s = this.#stretch;
    if (!s) return undefined;
    const seconds = Math.max(0.001, (this.#clock.now() - s.startedAt) / 1000);
    const delta = (k: keyof Counts) => s.counts[k] - s.base[k];
    const deleted = delta('deleted');
    // Items gone through: those listed, or (a sweep that lists nothing) those decided.
    const done = s.listed > 0 ? s.listed : deleted + delta('kept') + delta('skipped') + delta('errors');
    const snap: ProgressSnapshot = {
      phase: s.label, listed: s.listed, deleted, kept: delta('kept'), skipped: delta('skipped'), errors: delta('errors'),
      ratePerSecond: Math.round((deleted / seconds) * 10) / 10,
    };
    if (s.total !== undefined && done > 0) snap.etaSeconds = Math.round(Math.max(0, s.total - done) / (done / seconds));
    return snap;
  }

  /** One progress report now (the timer calls it every interval). */
  report(): void {
    const snap = this.snapshot();
    if (!snap) return;
    this.#options.logger.info({ progress: snap }, `progress ${snap.phase}`);
    this.#options.say(progressLine(snap, this.#options.dryRun));
  }
}

/** `progress gitjobs: listed 1200, deleted 398, kept 20; 39.8 deleted/s; about 30s left`. */
export function progressLine(s: ProgressSnapshot, dryRun: boolean): string {
  const verb = dryRun ? 'would delete' : 'deleted';
  const counts = [`listed ${s.listed}`, `${verb} ${s.deleted}`, `kept ${s.kept}`, ...(s.skipped ? [`skipped ${s.skipped}`] : []), ...(s.errors ? [`errors ${s.errors}`] : [])];
  const eta = s.etaSeconds !== undefined ? `; about ${formatAge(s.etaSeconds * 1000)} left` : '';
  return `progress ${s.phase}: ${counts.join(', ')}; ${s.ratePerSecond} ${dryRun ? 'planned' : 'deleted'}/s${eta}`;
}
