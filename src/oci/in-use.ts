// What is in use, kept current while the sweep runs: the mark's list of Bundles and
// BundleDeployments, then a watch on each started at that list's resourceVersion, so every
// change since the list is applied as it arrives. Each delete asks for the view right before it
// is sent and is judged against it: at most the watch events still on the wire behind it. A
// watch that breaks (an error, 410 Expired, an early close) stops the sweep: nothing more is
// deleted without a current view.
import { Watch } from '@kubernetes/client-node';
import type { KubeAccess } from '../kube/access.ts';
import { describeOp, isRetryable, KubeApiError, toKubeApiError, type KubeOp } from '../kube/errors.ts';
import { PhaseStopped } from '../phase.ts';
import { messageOf } from '../error-text.ts';
import type { Logger } from '../log.ts';
import { FLEET_GROUP, idsNamedBy } from './rules.ts';

export const FLEET_VERSION = 'v1alpha1';
export type FleetKind = 'Bundle' | 'BundleDeployment';
export const PLURAL: Record<FleetKind, 'bundles' | 'bundledeployments'> = { Bundle: 'bundles', BundleDeployment: 'bundledeployments' };

interface FleetObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { contentsId?: unknown; deploymentID?: unknown; stagedDeploymentID?: unknown };
}

/** Which ids each Bundle and BundleDeployment names, and how many name each id. */
export class InUseView {
  readonly #byObject = new Map<string, readonly string[]>();
  readonly #counts = new Map<string, number>();

  /** Records what `object` of `kind` names now (replacing what it named before). */
  apply(kind: FleetKind, object: FleetObject): void {
    const key = objectKey(kind, object);
    this.#drop(key);
    const ids = [...new Set(idsNamedBy(kind, object.spec))];
    if (ids.length === 0) return;
    this.#byObject.set(key, ids);
    for (const id of ids) this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1);
  }

  remove(kind: FleetKind, object: FleetObject): void {
    this.#drop(objectKey(kind, object));
  }

  has(id: string): boolean {
    return this.#counts.has(id);
  }

  #drop(key: string): void {
    for (const id of this.#byObject.get(key) ?? []) {
      const n = (this.#counts.get(id) ?? 1) - 1;
      if (n > 0) this.#counts.set(id, n);
      else this.#counts.delete(id);
    }
    this.#byObject.delete(key);
  }
}

/** client-node's Watch rejects with the answer's status code and text (no body), or a socket error. */
function watchFailure(err: unknown): string {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === 'number' ? `${code} ${messageOf(err)}: refused` : messageOf(err);
}

/** A watch refused for overload (429, 5xx) or left without an answer: the server's trouble, not the chart's. */
function watchOverloaded(op: KubeOp, err: unknown): boolean {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return isRetryable(typeof code === 'number' ? new KubeApiError(op, code, '', '') : toKubeApiError(op, err));
}

const objectKey = (kind: FleetKind, o: FleetObject) => `${kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** What the sweep asks before each delete; throws when the view cannot be trusted any more. */
export interface InUseSource {
  current(): Promise<{ has(id: string): boolean }>;
  /** A cheaper look for a first check that decides no delete (the watched view, no fresh read); default: current(). */
  watched?(): Promise<{ has(id: string): boolean }>;
}

/** The view stopped being current: the sweep stops, `partial` when the server was overloaded, else `failed`. */
export class WatchBroken extends PhaseStopped {
  override readonly name = 'WatchBroken';
}

export interface WatchOptions {
  logger: Logger;
  /**
   * Asked of the server per watch; a close at about this age is re-opened from the last version
   * seen. Default 20: below client-node's 30 s inactivity limit, so a quiet cluster is not a
   * dead connection, while a silent dead one still is.
   */
  timeoutSeconds?: number;
}

/** Keeps an InUseView current with a watch per kind, from the resourceVersion of the mark's list. */
export class InUseWatch implements InUseSource {
  readonly #view: InUseView;
  readonly #watch: Watch;
  readonly #options: WatchOptions;
  readonly #controllers = new Set<AbortController>();
  #broken: WatchBroken | undefined;
  #closed = false;
  /** Watches being (re)opened: the view is not current until they answer. */
  readonly #opening = new Set<Promise<void>>();

  constructor(access: KubeAccess, view: InUseView, options: WatchOptions) {
    this.#view = view;
    this.#watch = new Watch(access.kubeConfig);
    this.#options = options;
  }

  /** Starts one watch per kind at the version its list was read at. */
  start(resourceVersions: Record<FleetKind, string>): void {
    for (const kind of ['Bundle', 'BundleDeployment'] as const) this.#open(kind, resourceVersions[kind]);
  }

  /** Why the view stopped being current, once it has. */
  get broken(): string | undefined {
    return this.#broken?.message;
  }

  async current(): Promise<InUseView> {
    // Events already received are applied before the view is read.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#opening.size > 0 && !this.#broken) await Promise.all(this.#opening);
    if (this.#broken) throw this.#broken;
    return this.#view;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#controllers) c.abort();
    this.#controllers.clear();
  }

  #timeoutSeconds(): number {
    return this.#options.timeoutSeconds ?? 20;
  }

  #break(cause: string, overloaded = false): void {
    if (this.#closed || this.#broken) return;
    this.#broken = new WatchBroken({ outcome: overloaded ? 'partial' : 'failed', cause });
    this.#options.logger.warn({ phase: 'oci' }, cause);
    this.close();
  }

  #open(kind: FleetKind, resourceVersion: string): void {
    const plural = PLURAL[kind];
    let version = resourceVersion;
    const openedAt = performance.now();
    const path = `/apis/${FLEET_GROUP}/${FLEET_VERSION}/${plural}`;
    const op: KubeOp = { verb: 'watch', resource: `${plural}.${FLEET_GROUP}` };
    const what = describeOp(op);
    const notCurrent = 'the view of what is in use is not current, nothing more deleted';
    let controller: AbortController | undefined;
    const onEvent = (type: string, object: FleetObject & { code?: number; reason?: string; message?: string }) => {
      if (this.#closed) return;
      if (type === 'ERROR') {
        this.#break(`${what}: ${object.code ?? ''} ${object.reason ?? 'Error'}: ${object.message ?? ''}; ${notCurrent}`.replace(/ +/g, ' '));
        return;
      }
      version = object.metadata?.resourceVersion ?? version;
      if (type === 'ADDED' || type === 'MODIFIED') this.#view.apply(kind, object);
      else if (type === 'DELETED') this.#view.remove(kind, object);
    };
    const onDone = (err: unknown) => {
      if (controller) this.#controllers.delete(controller);
      if (this.#closed || this.#broken) return;
      if (err) {
        this.#break(`${what}: ${watchFailure(err)}; ${notCurrent}`, watchOverloaded(op, err));
        return;
      }
      // The server ends a watch at the timeoutSeconds asked for: open it again from where it was.
      if (performance.now() - openedAt >= this.#timeoutSeconds() * 900) this.#open(kind, version);
      else this.#break(`${what}: closed by the server; ${notCurrent}`);
    };
    const opening = this.#watch
      .watch(path, { resourceVersion: version, allowWatchBookmarks: true, timeoutSeconds: this.#timeoutSeconds() }, onEvent, onDone)
      .then((c) => {
        controller = c;
        if (this.#closed) c.abort();
        else this.#controllers.add(c);
      }, (err: unknown) => this.#break(`${what}: ${watchFailure(err)}; ${notCurrent}`, watchOverloaded(op, err)))
      .finally(() => this.#opening.delete(opening));
    this.#opening.add(opening);
  }
}
