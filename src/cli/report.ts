import type { PhaseResult, Tally } from '../phase.ts';
import type { RunSummary } from '../marker/summary.ts';

const KIND_LABEL = { jobs: 'jobs', ociArtifacts: 'oci artifacts', ociSecrets: 'oci secrets' } as const;

/**
 * The readable last line, e.g. `completed: jobs deleted 42 kept 7 skipped 0 errors 0; oci
 * skipped (--skip-oci); 130 API requests in 2.1s`. The JSON log carries the same numbers.
 */
export function summaryLine(headline: string, results: readonly PhaseResult[], summary: RunSummary, dryRun: boolean): string {
  const parts: string[] = [];
  for (const kind of Object.keys(KIND_LABEL) as Array<keyof typeof KIND_LABEL>) {
    const tally = summary[kind];
    if (tally) parts.push(`${KIND_LABEL[kind]} ${tallyText(tally, dryRun)}`);
  }
  for (const result of results) {
    if (result.outcome !== 'completed') parts.push(`${result.phase} ${result.outcome}${result.cause ? ` (${result.cause})` : ''}`);
  }
  parts.push(`${summary.apiRequests} API requests in ${(summary.durationMs / 1000).toFixed(1)}s`);
  return `${headline}: ${parts.join('; ')}`;
}

function tallyText(t: Tally, dryRun: boolean): string {
  return `${dryRun ? 'would delete' : 'deleted'} ${t.deleted} kept ${t.kept} skipped ${t.skipped} errors ${t.errors}`;
}
