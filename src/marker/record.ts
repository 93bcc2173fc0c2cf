// The marker ConfigMap's data, as a contract (README "The run-once marker"): every key is a
// string a person can read with `kubectl get configmap -o jsonpath`.

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
  for (const key of ['finishedAt', 'renewedAt', 'cause', 'summary'] as const) {
    const value = record[key];
    if (value !== undefined) data[key] = value;
  }
  return data;
}

/** RFC 3339 in UTC with milliseconds: lock staleness is judged from these, so keep the precision. */
export function rfc3339(date: Date): string {
  return date.toISOString();
}
