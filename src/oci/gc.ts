// PLACEHOLDER owned by the OCI engineer: replaced by the real mark-then-sweep phase.
import type { PhaseResult, RunContext } from '../phase.ts';

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
}

export async function collectOciGarbage(_ctx: RunContext, _options: OciOptions): Promise<PhaseResult> {
  return { phase: 'oci', outcome: 'skipped', cause: 'not implemented yet', tallies: {} };
}
