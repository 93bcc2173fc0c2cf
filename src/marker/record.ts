// The marker ConfigMap's data, as a contract (README "The run-once marker"): every key is a
// string a person can read with `kubectl get configmap -o jsonpath`.
//
//   status              running | completed | partial | failed
//   runKey              the run's key (--run-key); empty without one
//   startedAt           RFC 3339, when the run took the marker
//   finishedAt          RFC 3339, when it wrote its final status
//   holder              who runs it: --holder, else Pod name (or host) / run id / pid, unique per run
//   renewedAt           RFC 3339, the lock's heartbeat while running (= finishedAt after)
//   lockTimeoutSeconds  the holder's --lock-timeout in seconds (decimal, e.g. "120", "1.5"): its
//                       lock is live until renewedAt is older than this or the reader's own
//                       timeout, whichever is longer (a marker without it: the reader's own)
//   cause               one line, for partial and failed
//   summary             JSON, see summary.ts

export const MARKER_LABEL_KEY = 'app.kubernetes.io/name';
export const MARKER_LABEL_VALUE = 'fleet-cleanup';

export type MarkerStatus = 'running' | 'completed' | 'partial' | 'failed';
export type FinalStatus = Exclude<MarkerStatus, 'running'>;

const STATUSES: readonly string[] = ['running', 'completed', 'partial', 'failed'];

export interface MarkerRecord {
  /** undefined when the data holds no status we know (hand-edited): treated like a failed run. */
  status: MarkerStatus | undefined;
  runKey: string;
  startedAt: string;
  finishedAt?: string;
  holder: string;
  renewedAt?: string;
  /** The holder's lock timeout in seconds, as written; see lockTimeoutMsOf. */
  lockTimeoutSeconds?: string;
  cause?: string;
  /** JSON text, see summary.ts. */
  summary?: string;
}

export function recordFromData(data: Record<string, string> | undefined): MarkerRecord {
  const d = data ?? {};
  const optional = (key: string): { [k: string]: string } => (d[key] !== undefined ? { [key]: d[key] } : {});
  return {
    status: STATUSES.includes(d.status ?? '') ? (d.status as MarkerStatus) : undefined,
    runKey: d.runKey ?? '',
    startedAt: d.startedAt ?? '',
    holder: d.holder ?? '',
    ...optional('finishedAt'),
    ...optional('renewedAt'),
    ...optional('lockTimeoutSeconds'),
    ...optional('cause'),
    ...optional('summary'),
  };
}

export function dataFromRecord(record: MarkerRecord): Record<string, string> {
  const data: Record<string, string> = {
    status: record.status ?? 'failed',
    runKey: record.runKey,
    startedAt: record.startedAt,
    holder: record.holder,
  };
  for (const key of ['finishedAt', 'renewedAt', 'lockTimeoutSeconds', 'cause', 'summary'] as const) {
    const value = record[key];
    if (value !== undefined) data[key] = value;
  }
  return data;
}

/** The `lockTimeoutSeconds` value for a lock timeout: seconds, with the milliseconds kept. */
export function lockTimeoutSecondsText(lockTimeoutMs: number): string {
  return String(lockTimeoutMs / 1000);
}

/** A recorded lock timeout is trusted up to a day: an edited `1e308` must not block every run for ever. */
export const MAX_RECORDED_LOCK_TIMEOUT_MS = 24 * 3_600_000;

/** The holder's recorded lock timeout, at most a day; undefined when absent or not a positive number (hand-edited). */
export function lockTimeoutMsOf(record: MarkerRecord): number | undefined {
  const seconds = Number(record.lockTimeoutSeconds ?? Number.NaN);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RECORDED_LOCK_TIMEOUT_MS) : undefined;
}

/** RFC 3339 in UTC with milliseconds: lock staleness is judged from these, so keep the precision. */
export function rfc3339(date: Date): string {
  return date.toISOString();
}
