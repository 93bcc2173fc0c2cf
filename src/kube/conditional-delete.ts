// The one path every Kubernetes delete of the job takes (GitRepo Jobs, OCI Secrets): conditional
// on the uid and resourceVersion of the object as judged, sent only while the run may still
// delete, with one reading of every answer. A 404 after a retried attempt is our own delete
// whose answer was lost; a 404 or 409 otherwise is a skip; 401/403 stop the phase (the
// credentials or RBAC will not get better for the next object), and so do N failures in a row.
import type { ConfigurationOptions, V1DeleteOptions, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { budgetStop, type PhaseStop } from '../phase.ts';
import { messageOf } from '../error-text.ts';
import type { KubeAccess } from './access.ts';
import { isConflict, isForbidden, isNotFound, isUnauthorized, KubeApiError, RequestAbandoned, type KubeOp } from './errors.ts';

declare const judgedBrand: unique symbol;

/**
 * An object as judged: a delete of it is conditional on exactly this uid and resourceVersion.
 * Only `judged()` makes one, and only from metadata that has all four fields.
 */
export interface Judged {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly [judgedBrand]: true;
}

/** The object as judged, or undefined when its metadata lacks a namespace, name, uid or resourceVersion. */
export function judged(meta: V1ObjectMeta | undefined): Judged | undefined {
  const { namespace, name, uid, resourceVersion } = meta ?? {};
  if (!namespace || !name || !uid || !resourceVersion) return undefined;
  return { namespace, name, uid, resourceVersion } as Judged;
}

export type DeleteResult =
  | { outcome: 'deleted'; confirmedBy?: string }
  /** Gone or changed since judged (404/409): not ours to delete any more. */
  | { outcome: 'skipped'; reason: string }
  /** Never sent: the phase stopped first (budget, signal, lock, 401/403, failures in a row). */
  | { outcome: 'not-sent' }
  /** 401/403: the phase stops here. */
  | { outcome: 'refused'; message: string }
  | { outcome: 'failed'; message: string };

export interface DeleteTarget {
  /** `resource.group` as kubectl names it: `jobs.batch`, `secrets`. */
  resource: string;
  /** Plural for people, in the stop cause: `Jobs`, `Secrets`. */
  noun: string;
  object: Judged;
  /** Delete options besides the preconditions (e.g. propagationPolicy). */
  options?: Omit<V1DeleteOptions, 'preconditions'>;
  send(body: V1DeleteOptions, requestOptions: ConfigurationOptions): Promise<unknown>;
}

export interface ConditionalDeleterOptions {
  access: KubeAccess;
  logger: Logger;
  /** The run's budget: time, signal, lost lock. */
  budget: AbortSignal;
  /** A cause when the run may no longer send deletes (its lock is past its local deadline). */
  fence?: () => string | undefined;
  /** Failures in a row (after the access layer's retries) that stop the phase. Default 10. */
  maxConsecutiveFailures?: number;
}

export const MAX_CONSECUTIVE_FAILURES = 10;

export class ConditionalDeleter {
  readonly #options: ConditionalDeleterOptions;
  readonly #halt = new AbortController();
  /** Fires on the budget or on a stop of our own: deletes still queued in the access layer are not sent. */
  readonly signal: AbortSignal;
  #stop: PhaseStop | undefined;
  #consecutiveFailures = 0;
  #firstFailure: string | undefined;

  constructor(options: ConditionalDeleterOptions) {
    this.#options = options;
    this.signal = AbortSignal.any([options.budget, this.#halt.signal]);
  }

  /** Why deleting stopped; the first stop wins. */
  get stop(): PhaseStop | undefined {
    if (!this.#stop && this.#options.budget.aborted) this.#stop = budgetStop(this.#options.budget);
    return this.#stop;
  }

  stopWith(stop: PhaseStop): void {
    this.#stop ??= stop;
    this.#halt.abort();
  }

  /** The lock's deadline passed: stop before sending anything. */
  fenced(): boolean {
    const cause = this.#options.fence?.();
    if (cause) this.stopWith({ outcome: 'partial', cause });
    return cause !== undefined;
  }

  async delete(target: DeleteTarget): Promise<DeleteResult> {
    const { access, logger } = this.#options;
    const { namespace, name, uid, resourceVersion } = target.object;
    if (this.stop || this.fenced()) return { outcome: 'not-sent' };
    const op: KubeOp = { verb: 'delete', resource: target.resource, namespace, name };
    const body: V1DeleteOptions = { ...target.options, preconditions: { uid, resourceVersion } };
    let sent = false;
    try {
      await access.call(
        op,
        (requestOptions) => {
          // Checked at the moment of sending (after the rate limiter and any backoff), every attempt.
          if (!sent && this.fenced()) throw new RequestAbandoned(op);
          sent = true;
          return target.send(body, requestOptions);
        },
        { signal: this.signal },
      );
      this.#consecutiveFailures = 0;
      return { outcome: 'deleted' };
    } catch (err) {
      if (err instanceof RequestAbandoned || (!sent && this.#stop)) {
        this.#stop ??= budgetStop(this.#options.budget);
        return { outcome: 'not-sent' };
      }
      if (isNotFound(err) && err instanceof KubeApiError && err.afterRetry) {
        // Our first attempt was most likely applied and its answer lost: gone, by us.
        this.#consecutiveFailures = 0;
        return { outcome: 'deleted', confirmedBy: 'NotFound after a retried delete' };
      }
      if (isNotFound(err) || isConflict(err)) {
        this.#consecutiveFailures = 0;
        return { outcome: 'skipped', reason: 'gone or changed since judged' };
      }
      const message = messageOf(err);
      logger.error({ namespace, name, uid }, message);
      if (isForbidden(err) || isUnauthorized(err)) {
        const why = isForbidden(err) ? `RBAC forbids deleting ${target.noun}` : 'the API server refused the credentials';
        this.stopWith({ outcome: 'failed', cause: `${why}: ${message}` });
        return { outcome: 'refused', message };
      }
      this.#firstFailure ??= message;
      if (++this.#consecutiveFailures >= (this.#options.maxConsecutiveFailures ?? MAX_CONSECUTIVE_FAILURES)) {
        this.stopWith({ outcome: 'partial', cause: `gave up after ${this.#consecutiveFailures} deletes failed in a row; the first: ${this.#firstFailure}` });
      }
      return { outcome: 'failed', message };
    }
  }
}
