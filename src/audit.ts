import type { Logger } from './log.ts';

/**
 * One line per deletion, or planned deletion in a dry run: what an operator greps for after
 * the fact. Every field is a name or an id, never a credential.
 */
export interface AuditRecord {
  action: 'delete' | 'would-delete' | 'skip';
  /** Job, Secret, OCIArtifact */
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  /** Why it is deleted (or why the delete was skipped). */
  reason: string;
  [detail: string]: unknown;
}

export function audit(logger: Logger, record: AuditRecord): void {
  const { action, kind, namespace, name } = record;
  const verb = action === 'delete' ? 'deleted' : action === 'would-delete' ? 'would delete' : 'skipped';
  logger.info({ audit: true, ...record }, `${verb} ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
}

/** An age for a person: the two most significant units, `3h12m`, `2d4h`, `45s`; `unknown` when unknown. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return 'unknown';
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  let rest = Math.max(0, Math.floor(ms));
  const parts: string[] = [];
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.filter((p) => !p.startsWith('0')).join('') || '0s';
}
