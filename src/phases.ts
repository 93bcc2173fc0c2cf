// The deletion targets, in the order they run. A new target is one folder (its phase) and one
// line here.
import { gitJobsPhase } from './gitjobs/cleanup.ts';
import { ociPhase } from './oci/gc.ts';
import type { Phase } from './phase.ts';

export const PHASES: readonly Phase[] = [gitJobsPhase, ociPhase];
