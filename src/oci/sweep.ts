// Sweep: delete what the plan judged stale, each manifest and each Secret only right after a
// look at the in-use view (kept current by a watch, see in-use.ts), and the secrets only after
// the artifact is gone (they hold the credentials and the record that it exists). Whether a
// delete may go is mayDeleteNow (rules.ts); every Secret delete goes through the one
// conditional-delete path, on the uid and resourceVersion the plan saw.
import pLimit from 'p-limit';
import { formatAge } from '../audit.ts';
import { ConditionalDeleter } from '../kube/conditional-delete.ts';
import { budgetStop, PhaseStopped, type PhaseStop, type Recorder, type RunContext } from '../phase.ts';
import type { SecretRef } from './candidates.ts';
import type { InUseSource } from './in-use.ts';
import type { Judgement } from './plan.ts';
import type { RegistryPool } from './registries.ts';
import { mayDeleteNow } from './rules.ts';
import { messageOf } from '../error-text.ts';

export type Deletion = Extract<Judgement, { action: 'delete' | 'secrets-only' }>;

const IN_USE_AGAIN = 'in use again at re-check';

export interface SweepOptions {
  concurrency: number;
}

export class Sweeper {
  readonly #ctx: RunContext;
  readonly #pool: RegistryPool;
  readonly #inUse: InUseSource;
  readonly #rec: Recorder;
  readonly #deleter: ConditionalDeleter;
  #stop: PhaseStop | undefined;
  /** Per-object failures that did not take a registry down: the first message, and how many. */
  #firstError: string | undefined;
  #errorCount = 0;

  constructor(ctx: RunContext, pool: RegistryPool, inUse: InUseSource, rec: Recorder) {
    this.#ctx = ctx;
    this.#pool = pool;
    this.#inUse = inUse;
    this.#rec = rec;
    this.#deleter = new ConditionalDeleter({ access: ctx.access, logger: ctx.logger, budget: ctx.budget, ...(ctx.fence ? { fence: ctx.fence } : {}) });
  }

  async run(deletions: Deletion[], options: SweepOptions): Promise<void> {
    const limit = pLimit(options.concurrency);
    await Promise.all(deletions.map((d) => limit(() => this.#one(d))));
  }

  /** The stop, else a partial outcome naming the first failed delete. */
  outcome(): PhaseStop | undefined {
    if (this.#stopped()) return this.#stop;
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

    // A first look before any registry request: an id in use again needs no resolve. The
    // watched view is enough here, since a "free" only leads to the checks before each delete.
    const before = await this.#inUseNow(id, 'watched');
    if (before === 'stop') return this.#keep(d);
    if (before === 'in-use') return this.#skip(d, IN_USE_AGAIN);

    const client = this.#pool.client(registry);
    const record = artifactAudit(this.#pool, d);
    let current;
    try {
      current = await client.resolve(id);
    } catch (err) {
      return this.#registryFailure(d, err);
    }
    const gone = () => {
      this.#rec.record('ociArtifacts', 'skipped', { action: 'skip', ...record, reason: 'artifact gone since judged; deleting its secrets' });
    };
    let deletedByUs = false;
    if (d.action === 'delete') {
      // Resolving can take minutes with retries: look again right before the DELETE.
      const now = await this.#inUseNow(id);
      const verdict = mayDeleteNow({ stopped: now === 'stop' || this.#fenced(), inUse: now === 'in-use', judgedDigest: d.digest, currentDigest: current?.digest ?? null });
      if (!verdict.go) {
        if (verdict.why === 'stopped') return this.#keep(d);
        if (verdict.why === 'in-use') return this.#skip(d, IN_USE_AGAIN);
        if (verdict.why === 'changed') return this.#skip(d, `changed since judged: latest now points at ${current?.digest}`);
        gone();
      } else {
        try {
          // The digest the plan computed from the bytes it read and verified, never a header's.
          const outcome = await client.deleteManifest(id, d.digest);
          if (outcome === 'already-gone') gone();
          else {
            deletedByUs = true;
            this.#rec.record('ociArtifacts', 'deleted', { action: 'delete', ...record });
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
      const verdict = mayDeleteNow({ stopped: now === 'stop', inUse: now === 'in-use' });
      if (!verdict.go && verdict.why === 'stopped') {
        this.#rec.record('ociSecrets', 'kept', undefined, secrets.length - i);
        return;
      }
      if (!verdict.go) {
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

  /** Whether the current view names `id`; 'stop' when the run stopped or the view cannot be trusted (the stop says why). */
  async #inUseNow(id: string, look: 'current' | 'watched' = 'current'): Promise<'in-use' | 'free' | 'stop'> {
    if (this.#stopped()) return 'stop';
    let view;
    try {
      view = look === 'watched' && this.#inUse.watched ? await this.#inUse.watched() : await this.#inUse.current();
    } catch (err) {
      this.#stop ??= err instanceof PhaseStopped ? err.stop : { outcome: 'failed', cause: messageOf(err) };
      return 'stop';
    }
    // The budget or the lock may have gone meanwhile.
    if (this.#stopped()) return 'stop';
    return view.has(id) ? 'in-use' : 'free';
  }

  /** Budget spent, lock lost, a delete refused (401/403) or failing in a row, the view broken: nothing more is changed. */
  #stopped(): boolean {
    if (!this.#stop && this.#ctx.budget.aborted) this.#stop = budgetStop(this.#ctx.budget);
    this.#stop ??= this.#deleter.stop;
    return this.#stop !== undefined;
  }

  /** The lock is past its local deadline: stop before sending anything. */
  #fenced(): boolean {
    return this.#deleter.fenced() || this.#stopped();
  }

  async #deleteSecret(secret: SecretRef, id: string): Promise<void> {
    const { access } = this.#ctx;
    const { object } = secret;
    const record = { kind: 'Secret', namespace: object.namespace, name: object.name, uid: object.uid };
    const result = await this.#deleter.delete({
      resource: 'secrets',
      noun: 'Secrets',
      object,
      send: (body, requestOptions) => access.core.deleteNamespacedSecret({ name: object.name, namespace: object.namespace, body }, requestOptions),
    });
    switch (result.outcome) {
      case 'deleted':
        this.#rec.record('ociSecrets', 'deleted', { action: 'delete', ...record, reason: `OCI storage secret of deleted artifact ${id}`, ...(result.confirmedBy ? { confirmedBy: result.confirmedBy } : {}) });
        return;
      case 'skipped':
        this.#rec.record('ociSecrets', 'skipped', { action: 'skip', ...record, reason: result.reason });
        return;
      case 'not-sent':
        this.#rec.record('ociSecrets', 'kept');
        this.#stopped();
        return;
      case 'refused':
        this.#rec.record('ociSecrets', 'errors');
        this.#stopped();
        return;
      case 'failed':
        this.#rec.record('ociSecrets', 'errors');
        this.#error(result.message);
        return;
    }
  }

  #registryFailure(d: Deletion, err: unknown): void {
    const { registry, contentsId } = d.candidate;
    this.#rec.record('ociArtifacts', 'errors');
    this.#rec.record('ociSecrets', 'kept', undefined, d.candidate.secrets.length);
    if (this.#pool.fail(registry, err)) {
      this.#pool.keptForFailure(registry);
      return;
    }
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
    if (d.action === 'delete') this.#rec.record('ociArtifacts', 'kept');
    this.#rec.record('ociSecrets', 'kept', undefined, d.candidate.secrets.length);
  }

  #skip(d: Deletion, reason: string): void {
    if (d.action === 'delete') {
      this.#rec.record('ociArtifacts', 'skipped', { action: 'skip', ...artifactAudit(this.#pool, d), reason });
    }
    this.#skipSecrets(d.candidate.secrets, reason);
  }

  #skipSecrets(secrets: readonly SecretRef[], reason: string): void {
    for (const { object: s } of secrets) {
      this.#rec.record('ociSecrets', 'skipped', { action: 'skip', kind: 'Secret', namespace: s.namespace, name: s.name, uid: s.uid, reason });
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
