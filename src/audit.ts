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
