import { emptyTally, type PhaseOutcome, type PhaseResult, type Tally, type TallyKind } from '../phase.ts';
import type { FinalStatus } from './record.ts';

/** The marker's `summary` (JSON): what a person checks after a run. */
export interface RunSummary {
  jobs?: Tally;
  ociArtifacts?: Tally;
  ociSecrets?: Tally;
  phases: Record<string, PhaseOutcome>;
  durationMs: number;
  apiRequests: number;
}

const KINDS: readonly TallyKind[] = ['jobs', 'ociArtifacts', 'ociSecrets'];

export function buildSummary(results: readonly PhaseResult[], durationMs: number, apiRequests: number): RunSummary {
  const tallies: Partial<Record<TallyKind, Tally>> = {};
  const phases: Record<string, PhaseOutcome> = {};
  for (const result of results) {
    phases[result.phase] = result.outcome;
    for (const kind of KINDS) {
      const tally = result.tallies[kind];
      if (!tally) continue;
      const sum = (tallies[kind] ??= emptyTally());
      sum.deleted += tally.deleted;
      sum.kept += tally.kept;
      sum.skipped += tally.skipped;
      sum.errors += tally.errors;
    }
  }
  // Counts first: they are what a person reads the summary for.
  return { ...tallies, phases, durationMs: Math.round(durationMs), apiRequests };
}

/** Any phase failed → failed; else any partial → partial; completed and skipped phases → completed. */
export function overallStatus(results: readonly PhaseResult[]): FinalStatus {
  if (results.some((r) => r.outcome === 'failed')) return 'failed';
  if (results.some((r) => r.outcome === 'partial')) return 'partial';
  return 'completed';
}

/** One line: the causes of the phases that did not complete, each named by its phase. */
export function overallCause(results: readonly PhaseResult[]): string | undefined {
  const causes = results.filter((r) => r.outcome === 'failed' || r.outcome === 'partial').map((r) => `${r.phase} ${r.outcome}: ${r.cause ?? 'no cause given'}`);
  return causes.length > 0 ? causes.join('; ') : undefined;
}
