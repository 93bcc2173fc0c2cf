import { randomBytes } from 'node:crypto';
import type { V1ConfigMap, V1ObjectMeta } from '@kubernetes/client-node';
import type { KubeAccess } from '../kube/access.ts';
import { isAlreadyExists, isConflict, isNotFound, KubeApiError } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { decide, type Decision } from './decide.ts';
import { dataFromRecord, lockTimeoutSecondsText, MARKER_LABEL_KEY, MARKER_LABEL_VALUE, recordFromData, rfc3339, type FinalStatus, type MarkerRecord } from './record.ts';
import { messageOf, oneLine } from '../error-text.ts';

export interface MarkerRef {
  namespace: string;
  name: string;
}

export interface AcquireOptions extends MarkerRef {
  runKey: string | undefined;
  holder: string;
  force: boolean;
  lockTimeoutMs: number;
  /** Read and judge only: never write the marker. */
  dryRun: boolean;
  now: () => Date;
  /** Monotonic clock (ms) for the lock's local deadline; default performance.now. Tests pause a holder with it. */
  monotonic?: () => number;
  /**
   * Taken off the lock timeout for the local deadline, so that a run stops before another run's
   * clock (skewed, or reading renewedAt a little late) can call the lock stale. Default: a sixth
   * of the lock timeout.
   */
  fenceMarginMs?: number;
  logger: Logger;
}

export type Acquired =
  /** Nothing to do: completed for this key, or another live run holds the lock. */
  | { kind: 'skip'; decision: Decision; message: string }
  /** Dry run: the marker would be taken; nothing was written. */
  | { kind: 'would-take'; decision: Decision; message: string }
  | { kind: 'held'; lock: MarkerLock; message: string };

/** The marker cannot be used: one line naming the ConfigMap and the cause. */
export class MarkerError extends Error {
  override readonly name = 'MarkerError';
}

/** Lost races in a row before giving up; each loss means another run wrote in between. */
const MAX_ATTEMPTS = 5;

/**
 * Reads the marker and, unless it says to skip, takes it as this run's lock: create when
 * absent, else update carrying the resourceVersion just read. Losing either race (409) means
 * another run wrote first: read again and decide again, so two runs never both hold it. Unless
 * the marker then holds exactly what we wrote: the access layer retries a write whose answer was
 * lost, and when its first attempt was applied the retry meets our own write. That lock is ours.
 */
export async function acquireMarker(access: KubeAccess, options: AcquireOptions): Promise<Acquired> {
  const { namespace, name } = options;
  let refused: { record: MarkerRecord; message: string; sentAt: number } | undefined;
  const monotonic = options.monotonic ?? (() => performance.now());
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const current = await readMarker(access, options);
    if (current && refused && holds(current, refused.record)) {
      options.logger.info({ marker: `${namespace}/${name}`, holder: options.holder }, 'the marker holds our own write (a retried request whose first attempt was applied); the lock is ours');
      return { kind: 'held', lock: new MarkerLock(access, options, current, refused.record, refused.sentAt), message: refused.message };
    }
    const record = current ? recordOf(current, options) : undefined;
    const decision = decide(record, { runKey: options.runKey, force: options.force, lockTimeoutMs: options.lockTimeoutMs, now: options.now() });
    const message = describeDecision(decision, options);
    if (decision.action !== 'take') return { kind: 'skip', decision, message };
    if (options.dryRun) return { kind: 'would-take', decision, message };

    const sentAt = monotonic();
    const now = rfc3339(options.now());
    const running: MarkerRecord = {
      status: 'running', runKey: options.runKey ?? '', startedAt: now, holder: options.holder, renewedAt: now,
      lockTimeoutSeconds: lockTimeoutSecondsText(options.lockTimeoutMs),
    };
    try {
      const written = current
        ? await replace(access, options, current.metadata ?? {}, running)
        : await create(access, options, running);
      return { kind: 'held', lock: new MarkerLock(access, options, written, running, sentAt), message };
    } catch (err) {
      if (isAlreadyExists(err) || isConflict(err)) {
        options.logger.info({ marker: `${namespace}/${name}`, attempt }, 'another run wrote the marker first; reading it again');
        refused = { record: running, message, sentAt };
        continue;
      }
      throw err;
    }
  }
  throw new MarkerError(`configmap ${namespace}/${name}: lost the race for the marker ${MAX_ATTEMPTS} times in a row; another run keeps writing it`);
}

/**
 * Whether the ConfigMap's data is exactly `record`: then the write of it was ours, since the
 * holder is unique per run and the timestamps are this run's own, to the millisecond.
 */
function holds(cm: V1ConfigMap, record: MarkerRecord): boolean {
  const data = cm.data ?? {};
  const expected = dataFromRecord(record);
  const keys = Object.keys(expected);
  return Object.keys(data).length === keys.length && keys.every((key) => data[key] === expected[key]);
}

/** `--holder`'s default: Pod name (or host), a random run id, pid. The run id tells two runs in one Pod apart (pid 1 each). */
export function defaultHolder(name: string, pid: number): string {
  return `${name}/${randomBytes(4).toString('hex')}/${pid}`;
}

async function readMarker(access: KubeAccess, ref: MarkerRef): Promise<V1ConfigMap | undefined> {
  try {
    const { namespace, name } = ref;
    return await access.call({ verb: 'get', resource: 'configmaps', namespace, name }, (o) => access.core.readNamespacedConfigMap({ namespace, name }, o));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function recordOf(cm: V1ConfigMap, ref: MarkerRef): MarkerRecord {
  // Never take over (and overwrite) a ConfigMap that someone else owns under the same name.
  if (cm.metadata?.labels?.[MARKER_LABEL_KEY] !== MARKER_LABEL_VALUE) {
    throw new MarkerError(
      `configmap ${ref.namespace}/${ref.name} exists but is not a fleet-cleanup marker (no label ${MARKER_LABEL_KEY}=${MARKER_LABEL_VALUE}); choose another --marker-name`,
    );
  }
  return recordFromData(cm.data);
}

function describeDecision(decision: Decision, options: AcquireOptions): string {
  const ref = `${options.namespace}/${options.name}`;
  switch (decision.action) {
    case 'skip-completed':
      return `already completed for run key ${decision.runKey} at ${decision.finishedAt}; nothing to do (marker ${ref}; --force runs again)`;
    case 'skip-locked':
      return `another run is in progress: ${decision.holder || 'an unknown holder'} holds the lock since ${decision.startedAt} (renewed ${decision.renewedAt}; marker ${ref}); nothing to do`;
    case 'take':
      return `${options.dryRun ? 'would take' : 'took'} marker ${ref} (${decision.why})`;
  }
}

const markerLabels = (labels: Record<string, string> | undefined) => ({ ...labels, [MARKER_LABEL_KEY]: MARKER_LABEL_VALUE });

function create(access: KubeAccess, ref: MarkerRef, record: MarkerRecord): Promise<V1ConfigMap> {
  const body: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ref.name, namespace: ref.namespace, labels: markerLabels(undefined) }, data: dataFromRecord(record) };
  const { namespace, name } = ref;
  return access.call({ verb: 'create', resource: 'configmaps', namespace, name }, (o) => access.core.createNamespacedConfigMap({ namespace, body }, o));
}

/** Update with the resourceVersion of `metadata`: the API server refuses (409) if anyone wrote since. */
function replace(access: KubeAccess, ref: MarkerRef, metadata: V1ObjectMeta, record: MarkerRecord): Promise<V1ConfigMap> {
  const { managedFields: _managed, ...kept } = metadata;
  const body: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...kept, labels: markerLabels(kept.labels) }, data: dataFromRecord(record) };
  // Parameters by name: `ref` is the run's options, and a spread would send its dryRun: false,
  // which kube-apiserver refuses (422: dryRun accepts only All).
  const { namespace, name } = ref;
  return access.call({ verb: 'update', resource: 'configmaps', namespace, name }, (o) => access.core.replaceNamespacedConfigMap({ namespace, name, body }, o));
}

/**
 * This run's hold on the marker. It renews `renewedAt` every lock-timeout/3 with resourceVersion
 * preconditions; `lost` aborts when another run took the marker over, or when renewal has failed
 * long enough that another run may judge the lock stale. `fenceCause()` is the check right
 * before each delete: past the local deadline (last successful renewal + lock timeout − a
 * margin, on a monotonic clock) the lock may already be another run's, even when no timer has
 * had the chance to notice (a process paused by SIGSTOP or a long GC pause resumes mid-sweep).
 */
export class MarkerLock {
  readonly #access: KubeAccess;
  readonly #options: AcquireOptions;
  readonly #lost = new AbortController();
  #metadata: V1ObjectMeta;
  #record: MarkerRecord;
  /** A write that failed without an answer (timeouts): it may have been applied all the same. */
  #unconfirmed: MarkerRecord | undefined;
  #lastRenewed: number;
  /** Monotonic time at which the last successful write of renewedAt was sent. */
  #renewedMono: number;
  readonly #monotonic: () => number;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  constructor(access: KubeAccess, options: AcquireOptions, written: V1ConfigMap, record: MarkerRecord, sentAtMono: number) {
    this.#access = access;
    this.#options = options;
    this.#monotonic = options.monotonic ?? (() => performance.now());
    this.#renewedMono = sentAtMono;
    this.#metadata = written.metadata ?? {};
    this.#record = record;
    // From the renewedAt written, not from now: others judge the lock by that, and taking it may
    // have taken a while (a retried write, read back).
    const renewed = Date.parse(record.renewedAt ?? '');
    this.#lastRenewed = Number.isFinite(renewed) ? renewed : options.now().getTime();
  }

  /** Aborts (reason: a MarkerError) when the lock is lost. */
  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  /** Monotonic time after which this run must not send a delete: last renewal + lock timeout − margin. */
  get deadline(): number {
    const { lockTimeoutMs, fenceMarginMs } = this.#options;
    return this.#renewedMono + lockTimeoutMs - (fenceMarginMs ?? lockTimeoutMs / 6);
  }

  /** Why this run may no longer delete (lock lost, or past its local deadline); undefined while it may. */
  fenceCause(): string | undefined {
    if (this.#lost.signal.aborted) return (this.#lost.signal.reason as Error).message;
    const late = this.#monotonic() - this.deadline;
    if (late < 0) return undefined;
    const silentS = Math.round((this.#monotonic() - this.#renewedMono) / 1000);
    this.#lose(`the lock on configmap ${this.#ref()} was last renewed ${silentS}s ago, past its deadline (lock timeout less a margin): another run may hold it now; stopping before the next delete`);
    return (this.#lost.signal.reason as Error).message;
  }

  startRenewing(): void {
    const interval = Math.max(1, Math.floor(this.#options.lockTimeoutMs / 3));
    // Taking the marker may have taken long (retried writes): judge the lock's age now, not a
    // third of a timeout from now, so a lock already near expiry is renewed or given up first.
    if (this.#options.now().getTime() - this.#lastRenewed >= interval) this.#tick();
    this.#timer = setInterval(() => this.#tick(), interval);
    // The phases' own requests keep the process alive; the heartbeat alone must not.
    this.#timer.unref();
  }

  #tick(): void {
    if (this.#stopped || this.#lost.signal.aborted) return;
    const silentMs = this.#options.now().getTime() - this.#lastRenewed;
    // After two missed heartbeats another run could be a third of a timeout away from taking over.
    if (silentMs >= (this.#options.lockTimeoutMs * 2) / 3) {
      this.#lose(`could not renew the lock on configmap ${this.#ref()} for ${Math.round(silentMs / 1000)}s; stopping before another run takes it over`);
      return;
    }
    if (this.#inFlight) return;
    this.#inFlight = this.renew().finally(() => {
      this.#inFlight = undefined;
    });
  }

  /** One heartbeat. A 409 means another run took the marker: the lock is lost. */
  async renew(): Promise<void> {
    if (this.#stopped || this.#lost.signal.aborted) return;
    const sentAt = this.#monotonic();
    const renewed: MarkerRecord = { ...this.#record, renewedAt: rfc3339(this.#options.now()) };
    try {
      await this.#write(renewed);
      this.#lastRenewed = Date.parse(renewed.renewedAt!);
      this.#renewedMono = sentAt;
    } catch (err) {
      // 409: someone wrote since our last write; 404: someone deleted it. Either way it is not ours.
      if (isConflict(err) || isNotFound(err)) {
        this.#lose(await this.#takenOverMessage());
        return;
      }
      const why = messageOf(err);
      this.#options.logger.warn({ marker: this.#ref(), err: why }, 'could not renew the marker lock; trying again at the next heartbeat');
    }
  }

  /** Stops renewing and writes the final status. Throws MarkerError when the lock was lost. */
  async finish(status: FinalStatus, finishedAt: Date, cause: string | undefined, summary: string): Promise<MarkerRecord> {
    await this.stop();
    if (this.#lost.signal.aborted) throw this.#lost.signal.reason as MarkerError;
    const at = rfc3339(finishedAt);
    const { cause: _previous, ...rest } = this.#record;
    const final: MarkerRecord = { ...rest, status, finishedAt: at, renewedAt: at, summary, ...(cause ? { cause: oneLine(cause) } : {}) };
    try {
      await this.#write(final);
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) throw new MarkerError(`${await this.#takenOverMessage()}; the final status was not written`);
      throw err;
    }
    return final;
  }

  /** Stops the heartbeat and waits for one in flight, so no write races the final one. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#inFlight;
  }

  /**
   * Updates the marker with the resourceVersion of our last write. A 409 may answer our own
   * request: the access layer retries a write whose answer was lost, and the retry conflicts with
   * its applied first attempt; or an earlier write that failed (its attempts timed out) was
   * applied after all. So on a 409 read the marker back: holding `record`, the write is done;
   * holding the earlier unconfirmed write, write again on top of it. Any other 409 is rethrown.
   */
  async #write(record: MarkerRecord): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.#wrote(await replace(this.#access, this.#options, this.#metadata, record), record);
        return;
      } catch (err) {
        if (!isConflict(err)) {
          if (!isNotFound(err)) this.#unconfirmed = record;
          throw err;
        }
        const current = await readMarker(this.#access, this.#options);
        if (current && holds(current, record)) {
          this.#options.logger.info({ marker: this.#ref() }, 'the marker holds our own write (a retried request whose first attempt was applied)');
          this.#wrote(current, record);
          return;
        }
        if (!(current && attempt === 1 && this.#unconfirmed && holds(current, this.#unconfirmed))) throw err;
        this.#options.logger.info({ marker: this.#ref() }, 'the marker holds an earlier write of ours whose answer was lost; writing again on top of it');
        this.#wrote(current, this.#unconfirmed);
      }
    }
  }

  #wrote(written: V1ConfigMap, record: MarkerRecord): void {
    this.#metadata = written.metadata ?? this.#metadata;
    this.#record = record;
    this.#unconfirmed = undefined;
  }

  async #takenOverMessage(): Promise<string> {
    let by = 'another run';
    try {
      const cm = await readMarker(this.#access, this.#options);
      const now = cm ? recordFromData(cm.data) : undefined;
      by = !cm ? 'someone (it was deleted)' : now?.holder ? `${now.holder} (status ${now.status ?? 'unknown'})` : 'another run';
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
    }
    return `lost the lock on configmap ${this.#ref()}: taken over by ${by}`;
  }

  #lose(message: string): void {
    if (this.#lost.signal.aborted) return;
    this.#options.logger.error({ marker: this.#ref() }, message);
    this.#lost.abort(new MarkerError(message));
  }

  #ref(): string {
    return `${this.#options.namespace}/${this.#options.name}`;
  }
}

