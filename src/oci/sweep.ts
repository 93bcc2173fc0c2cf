// Sweep: delete what the plan judged stale, each manifest and each Secret only right after a
// fresh look at what is in use, and the secrets only after the artifact is gone (they hold the
// credentials and the record that it exists). Every Secret delete is conditional on the uid and
// resourceVersion the plan saw.
import pLimit from 'p-limit';
import { audit, formatAge } from '../audit.ts';
import { isConflict, isNotFound, RequestAbandoned, type KubeOp } from '../kube/errors.ts';
import { budgetStop, type PhaseStop, type RunContext, type Tally } from '../phase.ts';
import type { SecretRef } from './candidates.ts';
import type { InUseSet, MarkResult } from './mark.ts';
import type { Judgement } from './plan.ts';
import type { RegistryPool } from './registries.ts';
import { messageOf } from '../error-text.ts';

export type Deletion = Extract<Judgement, { action: 'delete' | 'secrets-only' }>;

export interface OciTallies {
  artifacts: Tally;
  secrets: Tally;
}

/**
 * The in-use set the sweep checks each item against. `current()` returns a set whose listing
 * finished at most `maxAgeMs` before the call (by the run's clock); an older one is listed
 * again first, and concurrent callers share that one listing. The sweep asks for it right
 * before each mutating request of an item: before the manifest DELETE (after resolving
 * `latest`, which can take minutes with retries) and before each of its Secret deletes. So no
 * manifest DELETE and no Secret delete is sent against an in-use view older than `maxAgeMs`
 * plus the duration of that one list (the listing began earlier: Bundles first, then
 * BundleDeployments, page by page). What comes on top: fetching a registry token, the API
 * client's wait for its turn, and the retries of that same request (registry timeout and
 * backoff). An object that starts naming the id inside that window, or while the request is in
 * flight, is not seen. A failed or cut-short listing throws: nothing is deleted without a
 * current set.
 */
export class Recheck {
  readonly #take: () => Promise<MarkResult>;
  readonly #maxAgeMs: number;
  readonly #now: () => Date;
  #current: Promise<{ inUse: InUseSet; at: number }> | undefined;

  constructor(take: () => Promise<MarkResult>, maxAgeMs: number, now: () => Date) {
    this.#take = take;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  async current(): Promise<InUseSet> {
    const pending = this.#current;
    if (pending) {
      const { inUse, at } = await pending;
      // Age counts from when the listing finished: a listing slower than maxAge must not loop.
      if (this.#now().getTime() - at <= this.#maxAgeMs) return inUse;
      // Only the first caller to see it stale replaces it; the others wait for that refresh.
      if (this.#current === pending) this.#current = undefined;
    }
    this.#current ??= this.#refresh();
    return (await this.#current).inUse;
  }

  async #refresh(): Promise<{ inUse: InUseSet; at: number }> {
    const marked = await this.#take();
    if (!marked.ok) {
      this.#current = undefined;
      throw new RecheckError(marked.outcome === 'partial' ? 'partial' : 'failed', `re-check of what is in use failed, nothing more deleted: ${marked.cause}`);
    }
    return { inUse: marked.inUse, at: this.#now().getTime() };
  }
}

export class RecheckError extends Error {
  override readonly name = 'RecheckError';
  readonly outcome: 'partial' | 'failed';
  constructor(outcome: 'partial' | 'failed', message: string) {
    super(message);
    this.outcome = outcome;
  }
}

const IN_USE_AGAIN = 'in use again at re-check';

export interface SweepOptions {
  concurrency: number;
}

export class Sweeper {
  readonly #ctx: RunContext;
  readonly #pool: RegistryPool;
  readonly #recheck: Recheck;
  readonly #tallies: OciTallies;
  stop: PhaseStop | undefined;
  /** Per-object failures that did not take a registry down: the first message, and how many. */
  #firstError: string | undefined;
  #errorCount = 0;

  constructor(ctx: RunContext, pool: RegistryPool, recheck: Recheck, tallies: OciTallies) {
    this.#ctx = ctx;
    this.#pool = pool;
    this.#recheck = recheck;
    this.#tallies = tallies;
  }

  async run(deletions: Deletion[], options: SweepOptions): Promise<void> {
    const limit = pLimit(options.concurrency);
    await Promise.all(deletions.map((d) => limit(() => this.#one(d))));
  }

  /** The stop, else a partial outcome naming the first failed delete. */
  outcome(): PhaseStop | undefined {
    if (this.stop) return this.stop;
    if (!this.#firstError) return undefined;
    const more = this.#errorCount > 1 ? ` (and ${this.#errorCount - 1} more failures)` : '';
    return { outcome: 'partial', cause: `${this.#firstError}${more}` };
  }

  async #one(d: Deletion): Promise<void> {
    const { candidate } = d;
    const { contentsId: id, registry } = candidate;
    if (this.#stopped()) return this.#keep(d);
    if (this.#pool.down(registry)) {
      this.#pool.keptForFailure(registry);
      return this.#keep(d);
    }

    // A first look before any registry request: an id in use again needs no resolve.
    const before = await this.#inUseNow(id);
    if (before === 'stop') return this.#keep(d);
    if (before === 'in-use') return this.#skip(d, IN_USE_AGAIN);

    const client = this.#pool.client(registry);
    const record = this.#artifactRecord(d);
    let current;
    try {
      current = await client.resolve(id);
    } catch (err) {
      return this.#registryFailure(d, err);
    }
    const gone = () => {
      this.#tallies.artifacts.skipped++;
      audit(this.#ctx.logger, { action: 'skip', ...record, reason: 'artifact gone since judged; deleting its secrets' });
    };
    let deletedByUs = false;
    if (d.action === 'delete') {
      if (current && current.digest !== d.digest) return this.#skip(d, `changed since judged: latest now points at ${current.digest}`);
      if (!current) gone();
      else {
        // Resolving can take minutes with retries: look again right before the DELETE.
        const now = await this.#inUseNow(id);
        if (now === 'stop') return this.#keep(d);
        if (now === 'in-use') return this.#skip(d, IN_USE_AGAIN);
        try {
          const outcome = await client.deleteManifest(id, d.digest);
          if (outcome === 'already-gone') gone();
          else {
            deletedByUs = true;
            this.#tallies.artifacts.deleted++;
            audit(this.#ctx.logger, { action: 'delete', ...record });
          }
        } catch (err) {
          return this.#registryFailure(d, err);
        }
      }
    } else if (current) {
      return this.#skip(d, `artifact appeared since judged (${current.digest})`);
    }
    await this.#deleteSecrets(d, deletedByUs);
  }

  /**
   * The artifact's secrets, each right after a look at what is in use. Once the id is in use
   * again the rest are kept: Fleet rewrites an identical Secret for a Bundle it re-points, so
   * the resourceVersion precondition would not stop the delete.
   */
  async #deleteSecrets(d: Deletion, deletedByUs: boolean): Promise<void> {
    const { contentsId: id, registry, secrets } = d.candidate;
    for (const [i, secret] of secrets.entries()) {
      const now = await this.#inUseNow(id);
      if (now === 'stop') {
        this.#tallies.secrets.kept += secrets.length - i;
        return;
      }
      if (now === 'in-use') {
        if (deletedByUs) {
          this.#ctx.logger.warn(
            { registry: this.#pool.reference(registry), contentsId: id },
            `artifact ${id} was deleted, then found in use again at re-check: a Bundle or BundleDeployment now points at a deleted artifact (Fleet pushes it again on its next reconcile); its remaining secrets are kept`,
          );
        }
        this.#skipSecrets(secrets.slice(i), IN_USE_AGAIN);
        return;
      }
      await this.#deleteSecret(secret, id);
    }
  }

  /**
   * Whether `id` is in use by a set listed at most the re-check's max age ago; 'stop' when the
   * run stopped (budget, lock) or the re-check failed (the stop says why).
   */
  async #inUseNow(id: string): Promise<'in-use' | 'free' | 'stop'> {
    if (this.#stopped()) return 'stop';
    let inUse: InUseSet;
    try {
      inUse = await this.#recheck.current();
    } catch (err) {
      if (this.#ctx.budget.aborted) this.stop ??= budgetStop(this.#ctx.budget);
      this.stop ??= err instanceof RecheckError ? { outcome: err.outcome, cause: err.message } : { outcome: 'failed', cause: String(err) };
      return 'stop';
    }
    // The budget or the lock may have gone while it listed.
    if (this.#stopped()) return 'stop';
    return inUse.has(id) ? 'in-use' : 'free';
  }

  /** Budget spent, lock lost, or another item's re-check failed: nothing more is changed. */
  #stopped(): boolean {
    if (!this.stop && this.#ctx.budget.aborted) this.stop = budgetStop(this.#ctx.budget);
    return this.stop !== undefined;
  }

  #artifactRecord(d: Deletion) {
    return artifactAudit(this.#pool, d);
  }

  async #deleteSecret(secret: SecretRef, id: string): Promise<void> {
    const { access, logger } = this.#ctx;
    const { namespace, name, uid, resourceVersion } = secret;
    const op: KubeOp = { verb: 'delete', resource: 'secrets', namespace, name };
    const record = { kind: 'Secret', namespace, name, uid };
    try {
      await access.call(op, (o) => access.core.deleteNamespacedSecret({ name, namespace, body: { preconditions: { uid, resourceVersion } } }, o), { signal: this.#ctx.budget });
      this.#tallies.secrets.deleted++;
      audit(logger, { action: 'delete', ...record, reason: `OCI storage secret of deleted artifact ${id}` });
    } catch (err) {
      if (err instanceof RequestAbandoned) {
        // Not sent: the budget fired while it waited for its turn.
        this.#tallies.secrets.kept++;
        this.#stopped();
        return;
      }
      if (isNotFound(err) || isConflict(err)) {
        this.#tallies.secrets.skipped++;
        audit(logger, { action: 'skip', ...record, reason: 'gone or changed since judged' });
        return;
      }
      this.#tallies.secrets.errors++;
      this.#error(messageOf(err));
    }
  }

  #registryFailure(d: Deletion, err: unknown): void {
    const { registry, contentsId } = d.candidate;
    if (this.#pool.fail(registry, err)) {
      this.#pool.keptForFailure(registry);
      this.#tallies.artifacts.errors++;
      this.#tallies.secrets.kept += d.candidate.secrets.length;
      return;
    }
    this.#tallies.artifacts.errors++;
    this.#tallies.secrets.kept += d.candidate.secrets.length;
    const message = messageOf(err);
    this.#ctx.logger.warn({ registry: this.#pool.reference(registry), contentsId }, `cannot delete artifact ${contentsId}: ${message}; it and its secrets are kept`);
    this.#error(message);
  }

  #error(message: string): void {
    this.#errorCount++;
    this.#firstError ??= message;
    this.#ctx.logger.warn({ phase: 'oci' }, message);
  }

  #keep(d: Deletion): void {
    if (d.action === 'delete') this.#tallies.artifacts.kept++;
    this.#tallies.secrets.kept += d.candidate.secrets.length;
  }

  #skip(d: Deletion, reason: string): void {
    const { logger } = this.#ctx;
    if (d.action === 'delete') {
      this.#tallies.artifacts.skipped++;
      audit(logger, { action: 'skip', ...this.#artifactRecord(d), reason });
    }
    this.#skipSecrets(d.candidate.secrets, reason);
  }

  #skipSecrets(secrets: readonly SecretRef[], reason: string): void {
    for (const s of secrets) {
      this.#tallies.secrets.skipped++;
      audit(this.#ctx.logger, { action: 'skip', kind: 'Secret', namespace: s.namespace, name: s.name, uid: s.uid, reason });
    }
  }
}

/** The audit fields of an artifact: registry, repository, digest, age and why it is stale. */
export function artifactAudit(pool: RegistryPool, d: Deletion) {
  const { contentsId } = d.candidate;
  const client = pool.client(d.candidate.registry);
  return {
    kind: 'OCIArtifact',
    name: client.repoPath(contentsId),
    registry: pool.connection(d.candidate.registry).host,
    contentsId,
    ...(d.action === 'delete' ? { digest: d.digest } : {}),
    age: formatAge(d.age.ms),
    ageFrom: d.age.source,
    ...(d.age.created ? { created: d.age.created } : {}),
    reason: d.reason,
  };
}
