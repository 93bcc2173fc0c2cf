import { lockTimeoutMsOf, type MarkerRecord } from './record.ts';

export interface DecideInput {
  /** undefined: no run key; the marker then guards the lock only and never skips the run. */
  runKey: string | undefined;
  force: boolean;
  /** This run's --lock-timeout; a holder that recorded a longer one keeps the lock that long. */
  lockTimeoutMs: number;
  now: Date;
}

/** What to do with the marker as read. Pure, so that every branch of the contract is unit-testable. */
export type Decision =
  | { action: 'skip-completed'; runKey: string; finishedAt: string }
  | { action: 'skip-locked'; holder: string; startedAt: string; renewedAt: string }
  | { action: 'take'; why: string };

export function decide(current: MarkerRecord | undefined, input: DecideInput): Decision {
  if (current === undefined) return { action: 'take', why: 'no marker yet' };
  if (current.status === 'running') {
    // A live lock wins even over --force: two runs never clean at once. Like a Lease, the lock
    // lasts as long as its holder said it would: a shorter timeout of ours must not cut it short.
    const renewed = Date.parse(current.renewedAt ?? current.startedAt);
    const age = input.now.getTime() - renewed;
    const timeoutMs = Math.max(input.lockTimeoutMs, lockTimeoutMsOf(current) ?? 0);
    if (Number.isFinite(renewed) && age < timeoutMs) {
      return { action: 'skip-locked', holder: current.holder, startedAt: current.startedAt, renewedAt: current.renewedAt ?? current.startedAt };
    }
    return { action: 'take', why: `previous run by ${current.holder || 'an unknown holder'} stopped renewing its lock${Number.isFinite(renewed) ? ` at ${current.renewedAt ?? current.startedAt}` : ''}` };
  }
  if (current.status === 'completed' && input.runKey !== undefined && current.runKey === input.runKey) {
    if (input.force) return { action: 'take', why: `--force: already completed for run key ${input.runKey}` };
    return { action: 'skip-completed', runKey: current.runKey, finishedAt: current.finishedAt ?? '(unknown time)' };
  }
  if (current.status === undefined) return { action: 'take', why: 'marker holds no known status' };
  if (current.status === 'completed') return { action: 'take', why: input.runKey === undefined ? 'no run key given' : `previous run key was ${current.runKey || '(none)'}` };
  return { action: 'take', why: `previous run ended ${current.status}${current.cause ? `: ${current.cause}` : ''}` };
}
