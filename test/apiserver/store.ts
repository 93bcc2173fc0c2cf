// In-memory object storage: a cluster-wide resourceVersion, an event log for watches,
// list snapshots for continue tokens, finalizers, and ownerReference garbage collection.
//
// Stored objects are never mutated in place (every write stores a fresh object), so list
// snapshots can share them and callers must clone before editing.

import { randomUUID } from 'node:crypto';
import type { Catalogue } from './resources.ts';
import type { KubeObject, ResourceType } from './types.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface StoreEvent {
  rv: number;
  type: EventType;
  storageKey: string;
  object: KubeObject;
  prev?: KubeObject;
}

export type Propagation = 'Orphan' | 'Background' | 'Foreground';

/** Events a watch can start after: at least this many, the newest ones (as kube's watch cache keeps the newest). */
const EVENT_LOG_SIZE = 50_000;
/** Trimmed this many at a time: trimming one per write moved all 50,000 entries on every write. */
const EVENT_LOG_TRIM = 5_000;

export function keyOf(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/** RFC 3339 with second precision, like metav1.Time. */
export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class Store {
  private readonly tables = new Map<string, Map<string, KubeObject>>();
  private readonly byUid = new Map<string, { storageKey: string; key: string }>();
  private readonly dependents = new Map<string, Set<string>>(); // owner uid → "storageKey\0key"
  private readonly log: StoreEvent[] = [];
  private readonly watchers = new Map<string, Set<(e: StoreEvent) => void>>();
  private rv = 1;
  private readonly catalogue: Catalogue;

  constructor(catalogue: Catalogue) {
    this.catalogue = catalogue;
  }

  /** The current global resourceVersion. */
  get resourceVersion(): number {
    return this.rv;
  }

  /** Oldest resourceVersion a watch can still start after. */
  get oldestWatchable(): number {
    return this.log.length > 0 ? this.log[0]!.rv - 1 : this.rv;
  }

  private table(storageKey: string): Map<string, KubeObject> {
    let t = this.tables.get(storageKey);
    if (!t) this.tables.set(storageKey, (t = new Map()));
    return t;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.tables.get(type.storageKey)?.get(`${type.namespaced ? (namespace ?? '') : ''}/${name}`);
  }

  getByUid(uid: string): KubeObject | undefined {
    const loc = this.byUid.get(uid);
    return loc ? this.tables.get(loc.storageKey)?.get(loc.key) : undefined;
  }

  /** Objects of one resource, in one namespace or all, in etcd key order. */
  list(type: ResourceType, namespace?: string): KubeObject[] {
    const t = this.tables.get(type.storageKey);
    if (!t) return [];
    const out: Array<[string, KubeObject]> = [];
    const prefix = namespace !== undefined && type.namespaced ? `${namespace}/` : undefined;
    for (const [k, v] of t) if (prefix === undefined || k.startsWith(prefix)) out.push([k, v]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out.map((e) => e[1]);
  }

  countInNamespace(namespace: string): number {
    let n = 0;
    for (const t of this.tables.values()) for (const k of t.keys()) if (k.startsWith(`${namespace}/`)) n++;
    return n;
  }

  // ---- events ----

  eventsSince(rv: number): StoreEvent[] {
    // binary search: the log is ordered by rv
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.log[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.log.slice(lo);
  }

  subscribe(storageKey: string, fn: (e: StoreEvent) => void): () => void {
    let set = this.watchers.get(storageKey);
    if (!set) this.watchers.set(storageKey, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  private emit(e: StoreEvent): void {
    this.log.push(e);
    if (this.log.length > EVENT_LOG_SIZE + EVENT_LOG_TRIM) this.log.splice(0, this.log.length - EVENT_LOG_SIZE);
    for (const fn of this.watchers.get(e.storageKey) ?? []) fn(e);
  }

  // ---- writes ----

  private index(storageKey: string, key: string, prev: KubeObject | undefined, next: KubeObject | undefined): void {
    const ref = `${storageKey}\0${key}`;
    for (const o of prev?.metadata.ownerReferences ?? []) this.dependents.get(o.uid)?.delete(ref);
    for (const o of next?.metadata.ownerReferences ?? []) {
      let s = this.dependents.get(o.uid);
      if (!s) this.dependents.set(o.uid, (s = new Set()));
      s.add(ref);
    }
    if (prev?.metadata.uid) this.byUid.delete(prev.metadata.uid);
    if (next?.metadata.uid) this.byUid.set(next.metadata.uid, { storageKey, key });
  }

  /** Stores a new object: assigns uid (unless set), resourceVersion, creationTimestamp. */
  insert(type: ResourceType, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata.uid ??= randomUUID();
    stored.metadata.creationTimestamp = nowTimestamp();
    stored.metadata.resourceVersion = String(++this.rv);
    const key = keyOf(stored);
    this.table(type.storageKey).set(key, stored);
    this.index(type.storageKey, key, undefined, stored);
    this.emit({ rv: this.rv, type: 'ADDED', storageKey: type.storageKey, object: stored });
    return stored;
  }

  /**
   * Stores a new version of an existing object. An object that is being deleted and has
   * no finalizers left is removed instead (and its dependents collected).
   */
  replace(type: ResourceType, obj: KubeObject): KubeObject {
    const key = keyOf(obj);
    const t = this.table(type.storageKey);
    const prev = t.get(key);
    if (!prev) throw new Error(`replace of missing ${type.storageKey} ${key}`);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    if (stored.metadata.deletionTimestamp && (stored.metadata.finalizers ?? []).length === 0) {
      this.removeStored(type.storageKey, key, prev, stored);
      return stored;
    }
    t.set(key, stored);
    this.index(type.storageKey, key, prev, stored);
    this.emit({ rv: this.rv, type: 'MODIFIED', storageKey: type.storageKey, object: stored, prev });
    this.afterChange(prev, stored);
    return stored;
  }

  private removeStored(storageKey: string, key: string, prev: KubeObject, last: KubeObject): void {
    this.tables.get(storageKey)?.delete(key);
    this.index(storageKey, key, prev, undefined);
    this.emit({ rv: this.rv, type: 'DELETED', storageKey, object: last, prev });
    this.afterRemove(last);
  }

  /** Removes every object of a resource at once (its CRD went away). */
  dropAll(storageKey: string): void {
    const t = this.tables.get(storageKey);
    if (!t) return;
    for (const [key, obj] of [...t]) {
      this.rv++;
      this.removeStored(storageKey, key, obj, { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } });
    }
  }

  /**
   * Deletes an object as kube-apiserver's generic store does (deletionFinalizersForGarbageCollection):
   * Orphan adds the `orphan` finalizer, Foreground `foregroundDeletion`, Background drops both.
   * With finalizers left the object stays, with deletionTimestamp, and is returned as such; the
   * garbage collector then works asynchronously (orphans or deletes dependents, removes its
   * finalizer, which removes the object). Without finalizers the object goes at once and
   * Background dependents are collected. `dryRun` computes the answer and stores nothing.
   */
  delete(type: ResourceType, current: KubeObject, policy: Propagation, dryRun = false): { object: KubeObject; removed: boolean } {
    const key = keyOf(current);
    const uid = current.metadata.uid!;
    const next = structuredClone(current);
    const isNamespace = type.resource === 'namespaces' && type.group === '';
    const finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== 'orphan' && f !== 'foregroundDeletion');
    if (policy === 'Orphan') finalizers.push('orphan');
    if (policy === 'Foreground') finalizers.push('foregroundDeletion');
    if (isNamespace) {
      next['spec'] = { finalizers: ['kubernetes'] };
      next['status'] = { ...((next['status'] as object) ?? {}), phase: 'Terminating' };
    }
    if (finalizers.length === 0 && !isNamespace) {
      if (dryRun) return { object: current, removed: true };
      this.rv++;
      const last = { ...next, metadata: { ...next.metadata, resourceVersion: String(this.rv) } };
      this.removeStored(type.storageKey, key, current, last);
      return { object: last, removed: true };
    }
    if (!next.metadata.deletionTimestamp) {
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
    }
    next.metadata.finalizers = finalizers;
    if (finalizers.length === 0) delete next.metadata.finalizers;
    if (dryRun) return { object: next, removed: false };
    const stored = this.replaceKeep(type.storageKey, key, current, next);
    if (finalizers.includes('orphan') || finalizers.includes('foregroundDeletion')) setImmediate(() => this.collectFinalizing(uid));
    if (isNamespace) this.drainNamespace(String(current.metadata.name));
    const after = this.tables.get(type.storageKey)?.get(key);
    return { object: after ?? stored, removed: after === undefined };
  }

  /** The garbage collector's work on an owner being deleted with its `orphan` or `foregroundDeletion` finalizer. */
  private collectFinalizing(uid: string): void {
    const owner = this.getByUid(uid);
    if (!owner?.metadata.deletionTimestamp) return;
    if (owner.metadata.finalizers?.includes('orphan')) {
      this.orphanDependents(uid);
      const type = this.typeOf(this.byUid.get(uid)!.storageKey);
      const fresh = this.getByUid(uid);
      if (!type || !fresh) return;
      const next = structuredClone(fresh);
      next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== 'orphan');
      this.replace(type, next);
    } else if (owner.metadata.finalizers?.includes('foregroundDeletion')) this.foreground(uid);
  }

  /** replace() without the "no finalizers left → remove" rule (namespaces terminate via their content). */
  private replaceKeep(storageKey: string, key: string, prev: KubeObject, next: KubeObject): KubeObject {
    next.metadata.resourceVersion = String(++this.rv);
    this.table(storageKey).set(key, next);
    this.index(storageKey, key, prev, next);
    this.emit({ rv: this.rv, type: 'MODIFIED', storageKey, object: next, prev });
    return next;
  }

  private typeOf(storageKey: string): ResourceType | undefined {
    const [group, resource] = splitStorageKey(storageKey);
    return this.catalogue.findAnyVersion(group, resource);
  }

  private dependentObjects(uid: string): Array<{ type: ResourceType; obj: KubeObject }> {
    const out: Array<{ type: ResourceType; obj: KubeObject }> = [];
    for (const ref of [...(this.dependents.get(uid) ?? [])]) {
      const [storageKey, key] = ref.split('\0') as [string, string];
      const obj = this.tables.get(storageKey)?.get(key);
      const type = this.typeOf(storageKey);
      if (obj && type) out.push({ type, obj });
    }
    return out;
  }

  private orphanDependents(uid: string): void {
    for (const { type, obj } of this.dependentObjects(uid)) {
      const next = structuredClone(obj);
      next.metadata.ownerReferences = (next.metadata.ownerReferences ?? []).filter((o) => o.uid !== uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.replace(type, next);
    }
  }

  /** Foreground deletion: delete dependents, release the owner once no blocking one is left. */
  private foreground(ownerUid: string): void {
    for (const { type, obj } of this.dependentObjects(ownerUid)) {
      if (obj.metadata.deletionTimestamp) continue;
      const blocking = obj.metadata.ownerReferences?.some((o) => o.uid === ownerUid && o.blockOwnerDeletion) ?? false;
      this.delete(type, obj, blocking ? 'Foreground' : 'Background');
    }
    this.maybeFinishForeground(ownerUid);
  }

  private maybeFinishForeground(ownerUid: string): void {
    const owner = this.getByUid(ownerUid);
    if (!owner?.metadata.finalizers?.includes('foregroundDeletion')) return;
    const blocked = this.dependentObjects(ownerUid).some(({ obj }) =>
      obj.metadata.ownerReferences?.some((o) => o.uid === ownerUid && o.blockOwnerDeletion),
    );
    if (blocked) return;
    const type = this.typeOf(this.byUid.get(ownerUid)!.storageKey);
    if (!type) return;
    const next = structuredClone(owner);
    next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion');
    this.replace(type, next);
  }

  private afterChange(prev: KubeObject, next: KubeObject): void {
    // A dependent that let go of its owner (ownerReference removed) may unblock a Foreground owner.
    for (const o of prev.metadata.ownerReferences ?? []) {
      if (!next.metadata.ownerReferences?.some((n) => n.uid === o.uid)) this.maybeFinishForeground(o.uid);
    }
  }

  private afterRemove(gone: KubeObject): void {
    const uid = gone.metadata.uid;
    if (uid) this.collectDependents(uid);
    for (const o of gone.metadata.ownerReferences ?? []) this.maybeFinishForeground(o.uid);
    const ns = gone.metadata.namespace;
    if (ns) this.maybeFinishNamespace(ns);
  }

  /** The garbage collector: dependents of a vanished owner are deleted unless another owner still exists. */
  private collectDependents(ownerUid: string): void {
    for (const { type, obj } of this.dependentObjects(ownerUid)) {
      const refs = obj.metadata.ownerReferences ?? [];
      const alive = refs.filter((o) => o.uid !== ownerUid && this.byUid.has(o.uid));
      if (alive.length > 0) {
        const next = structuredClone(obj);
        next.metadata.ownerReferences = alive;
        this.replace(type, next);
      } else if (!obj.metadata.deletionTimestamp) {
        const fresh = this.get(type, obj.metadata.namespace, String(obj.metadata.name));
        if (fresh) this.delete(type, fresh, 'Background');
      }
    }
    this.dependents.delete(ownerUid);
  }

  private drainNamespace(ns: string): void {
    for (const [storageKey, t] of this.tables) {
      const type = this.typeOf(storageKey);
      if (!type?.namespaced) continue;
      for (const [key, obj] of [...t]) {
        if (!key.startsWith(`${ns}/`) || obj.metadata.deletionTimestamp) continue;
        const fresh = t.get(key);
        if (fresh) this.delete(type, fresh, 'Background');
      }
    }
    this.maybeFinishNamespace(ns);
  }

  private maybeFinishNamespace(ns: string): void {
    const nsType = this.catalogue.find('', 'v1', 'namespaces')!;
    const obj = this.get(nsType, undefined, ns);
    if (!obj?.metadata.deletionTimestamp || (obj.metadata.finalizers ?? []).length > 0) return;
    if (this.countInNamespace(ns) > 0) return;
    this.rv++;
    this.removeStored(nsType.storageKey, `/${ns}`, obj, { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } });
  }
}

export function splitStorageKey(storageKey: string): [string, string] {
  const i = storageKey.indexOf('/');
  return [storageKey.slice(0, i), storageKey.slice(i + 1)];
}
