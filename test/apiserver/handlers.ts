// Resource verbs: get, list, create, update, patch, delete, deletecollection (watch is in
// watch.ts). Each handler takes the parsed request and returns a reply or throws ApiError.

import { randomInt, randomUUID } from 'node:crypto';
import { ApiError, alreadyExists, badRequest, conflict, contractError, forbidden, invalid, notFound, notFoundPath, OPTIMISTIC_LOCK, preconditionFailed, unsupportedMediaType } from './errors.ts';
import { checkCreateNamespace, checkUpdateName, deleteOptions, listOptions, type DeleteOptions } from './options.ts';
import { applyPatch } from './patch.ts';
import { decodeProtobuf, PROTOBUF } from './protobuf.ts';
import { decodeContinue, encodeContinue, type Snapshots } from './paging.ts';
import type { RequestInfo } from './requestinfo.ts';
import type { Catalogue } from './resources.ts';
import { selectorPredicate } from './selectors.ts';
import { keyOf, type Propagation, type Store } from './store.ts';
import { canonical, fieldValidation, nameErrors, prepareForCreate, prepareForUpdate, prune, unknownFields, validate } from './strategy.ts';
import { toPartial, toPartialList, toTable, wantsPartialMetadata, wantsTable } from './table.ts';
import type { KubeObject, ResourceType } from './types.ts';

export interface Ctx {
  store: Store;
  catalogue: Catalogue;
  snapshots: Snapshots;
  info: RequestInfo;
  query: URLSearchParams;
  contentType: string;
  accept: string;
  body: Buffer;
  /** values for `Warning: 299 - "..."` headers */
  warnings: string[];
}

export interface Reply {
  status: number;
  body: unknown;
}

/** The served type a resource request addresses, or a 404 like kube's for unknown paths. */
export function resolveType(catalogue: Catalogue, info: RequestInfo): ResourceType {
  const type = catalogue.find(info.group, info.version, info.resource);
  if (!type) throw notFoundPath();
  if (info.subresource !== undefined && !(info.subresource === 'status' && type.statusSubresource)) throw notFoundPath();
  if (!type.namespaced && info.namespace !== undefined && !(info.resource === 'namespaces' && info.group === '')) throw notFoundPath();
  return type;
}

export function present(type: ResourceType, obj: KubeObject): KubeObject {
  const { apiVersion: _a, kind: _k, ...rest } = obj;
  return { apiVersion: type.group ? `${type.group}/${type.version}` : type.version, kind: type.kind, ...rest } as KubeObject;
}

export function parseBody(ctx: Ctx): unknown {
  if (ctx.contentType.split(';')[0]!.trim() === PROTOBUF && ctx.body.length > 0) return decodeProtobuf(ctx.body);
  const text = ctx.body.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw contractError(badRequest(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${(e as Error).message})`));
  }
}

export function objectBody(ctx: Ctx, type: ResourceType): KubeObject {
  const body = parseBody(ctx);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw contractError(badRequest('the body of the request must be a JSON object'));
  const obj = body as KubeObject;
  const gv = type.group ? `${type.group}/${type.version}` : type.version;
  if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
    throw contractError(badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`));
  }
  if (obj.kind !== undefined && obj.kind !== type.kind) {
    throw contractError(badRequest(`${obj.kind} in version "${type.version}" cannot be handled as a ${type.kind}: the kind in the data (${obj.kind}) does not match the expected kind (${type.kind})`));
  }
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (typeof obj.metadata !== 'object') throw contractError(badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: json: cannot unmarshal metadata`));
  return obj;
}

const isDryRun = (q: URLSearchParams) => q.getAll('dryRun').includes('All');

/** fieldValidation: Strict → 400, Warn → warning headers, both prune unknown fields of CRs. */
function checkFields(ctx: Ctx, type: ResourceType, obj: KubeObject): void {
  const mode = fieldValidation(ctx.query);
  if (mode === 'Ignore') {
    if (type.schema) prune(obj, unknownFields(type, obj));
    return;
  }
  const unknown = unknownFields(type, obj);
  if (unknown.length === 0) return;
  if (mode === 'Strict') {
    const detail = unknown.map((f) => `unknown field "${f}"`).join(', ');
    throw badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${detail}`);
  }
  for (const f of unknown) ctx.warnings.push(`unknown field "${f}"`);
  if (type.schema) prune(obj, unknown);
}

function checkNamespace(ctx: Ctx, type: ResourceType, obj: KubeObject): void {
  if (type.namespaced && ctx.info.namespace === undefined) throw notFoundPath();
  checkCreateNamespace(type, ctx.info, obj);
}

function getOr404(ctx: Ctx, type: ResourceType): KubeObject {
  const name = ctx.info.name!;
  const obj = ctx.store.get(type, ctx.info.namespace, name);
  if (!obj) throw notFound(type.resource, type.group, name);
  return obj;
}

// ---- get / list ----

export function get(ctx: Ctx, type: ResourceType): Reply {
  const obj = present(type, getOr404(ctx, type));
  if (wantsTable(ctx.accept)) return { status: 200, body: toTable(type, [obj], { resourceVersion: obj.metadata.resourceVersion }, ctx.query.get('includeObject')) };
  if (wantsPartialMetadata(ctx.accept)) return { status: 200, body: toPartial(obj) };
  return { status: 200, body: obj };
}

export function list(ctx: Ctx, type: ResourceType): Reply {
  const { pred, filtered } = selectorPredicate(type, ctx.query);
  const { limit, continueToken: token } = listOptions(ctx.query, false);
  const scope = `${type.storageKey}|${ctx.info.namespace ?? '*'}`;
  let rv = ctx.store.resourceVersion;
  let candidates: KubeObject[];
  if (token) {
    const t = decodeContinue(token);
    if (t.rv === -1) {
      // inconsistent continuation (after Expired): current data after the key
      candidates = ctx.store.list(type, ctx.info.namespace).filter((o) => keyOf(o) >= t.start);
    } else {
      candidates = ctx.snapshots.resume(scope, t);
      rv = t.rv;
    }
  } else candidates = ctx.store.list(type, ctx.info.namespace);

  // Like etcd3's store (GetList): keys are scanned in order and the selector drops what does
  // not match; once the page holds `limit` items, any key left (matching or not) means a
  // continue token. So a selective list may hand out a token whose next page is empty.
  const items: KubeObject[] = [];
  let i = 0;
  for (; i < candidates.length; i++) {
    if (limit > 0 && items.length >= limit) break;
    const o = candidates[i]!;
    if (pred(o)) items.push(o);
  }
  const more = i < candidates.length;
  const remaining = candidates.length - i;
  const listMeta: Record<string, unknown> = { resourceVersion: String(rv) };
  if (more) {
    if (!token || decodeContinue(token).rv === -1) ctx.snapshots.save(scope, rv, candidates, keyOf);
    listMeta['continue'] = encodeContinue(rv, keyOf(items[items.length - 1]!));
    if (!filtered) listMeta['remainingItemCount'] = remaining;
  }
  const presented = items.map((o) => present(type, o));
  if (wantsTable(ctx.accept)) return { status: 200, body: toTable(type, presented, listMeta, ctx.query.get('includeObject')) };
  if (wantsPartialMetadata(ctx.accept)) return { status: 200, body: toPartialList(presented, listMeta) };
  return {
    status: 200,
    body: { kind: type.listKind, apiVersion: type.group ? `${type.group}/${type.version}` : type.version, metadata: listMeta, items: presented },
  };
}

// ---- create ----

const SUFFIX_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

export function create(ctx: Ctx, type: ResourceType): Reply {
  if (ctx.info.subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  const obj = objectBody(ctx, type);
  checkNamespace(ctx, type, obj);
  if (!obj.metadata.name && obj.metadata.generateName) {
    let name: string;
    do {
      name = obj.metadata.generateName + Array.from({ length: 5 }, () => SUFFIX_CHARS[randomInt(SUFFIX_CHARS.length)]).join('');
    } while (ctx.store.get(type, obj.metadata.namespace, name));
    obj.metadata.name = name;
  }
  const errs = nameErrors(type, obj.metadata.name, obj.metadata.generateName);
  if (errs.length > 0) throw invalid(type.kind, type.group, obj.metadata.name ?? '', errs);
  checkFields(ctx, type, obj);
  if (type.namespaced) {
    const nsType = ctx.catalogue.find('', 'v1', 'namespaces')!;
    const ns = ctx.store.get(nsType, undefined, obj.metadata.namespace!);
    if (!ns) throw notFound('namespaces', '', obj.metadata.namespace!);
    if (ns.metadata.deletionTimestamp) {
      throw forbidden(type.resource, type.group, obj.metadata.name!, `unable to create new content in namespace ${ns.metadata.name} because it is being terminated`);
    }
  }
  prepareForCreate(type, obj);
  validate(type, obj);
  if (ctx.store.get(type, obj.metadata.namespace, obj.metadata.name!)) throw alreadyExists(type.resource, type.group, obj.metadata.name!);
  if (isDryRun(ctx.query)) return { status: 201, body: present(type, { ...obj, metadata: { ...obj.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } }) };
  return { status: 201, body: present(type, ctx.store.insert(type, obj)) };
}

// ---- update / patch ----

function checkRv(type: ResourceType, current: KubeObject, next: KubeObject, requireRv: boolean): void {
  const rv = next.metadata.resourceVersion;
  if (rv === undefined || rv === '') {
    if (requireRv) {
      throw invalid(type.resource, type.group, current.metadata.name!, [{ field: 'metadata.resourceVersion', type: 'Invalid', value: 0, detail: 'must be specified for an update' }]);
    }
    return;
  }
  if (rv !== current.metadata.resourceVersion) throw conflict(type.resource, type.group, current.metadata.name!, OPTIMISTIC_LOCK);
}

function write(ctx: Ctx, type: ResourceType, current: KubeObject, next: KubeObject): Reply {
  const statusOnly = ctx.info.subresource === 'status';
  if (!statusOnly) checkFields(ctx, type, next);
  const merged = prepareForUpdate(type, current, next, statusOnly);
  validate(type, merged);
  if (isDryRun(ctx.query)) return { status: 200, body: present(type, merged) };
  // an update that changes nothing stores nothing (kube keeps the resourceVersion)
  const comparable = (o: KubeObject) => canonical({ ...o, apiVersion: undefined, kind: undefined, metadata: { ...o.metadata, resourceVersion: undefined } });
  const same = comparable(merged) === comparable(current);
  if (same) return { status: 200, body: present(type, current) };
  return { status: 200, body: present(type, ctx.store.replace(type, merged)) };
}

export function update(ctx: Ctx, type: ResourceType): Reply {
  const next = objectBody(ctx, type);
  checkUpdateName(ctx.info, next);
  const current = getOr404(ctx, type);
  checkRv(type, current, next, !type.unconditionalUpdate);
  return write(ctx, type, current, next);
}

export function patch(ctx: Ctx, type: ResourceType): Reply {
  const ct = (ctx.contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (ct === 'application/apply-patch+yaml' || ct === 'application/apply-patch+cbor') throw unsupportedMediaType(ct);
  if (ct === 'application/strategic-merge-patch+json' && type.crd) {
    throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
  }
  const body = parseBody(ctx);
  const current = getOr404(ctx, type);
  const patched = applyPatch(ct, structuredClone(present(type, current)), body);
  if (patched === null || typeof patched !== 'object' || Array.isArray(patched)) throw badRequest('the patched object is not a JSON object');
  const next = patched as KubeObject;
  next.metadata ??= {};
  checkRv(type, current, next, false);
  return write(ctx, type, current, next);
}

// ---- delete ----

const JOB_ORPHAN_WARNING =
  'child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning';

/** shouldOrphanDependents / shouldDeleteDependents of registry/generic/registry/store.go. */
function policyFor(type: ResourceType, obj: KubeObject, opts: DeleteOptions): Propagation {
  if (opts.propagationPolicy) return opts.propagationPolicy as Propagation;
  if (opts.orphanDependents !== undefined) return opts.orphanDependents ? 'Orphan' : 'Background';
  if (obj.metadata.finalizers?.includes('orphan')) return 'Orphan';
  if (obj.metadata.finalizers?.includes('foregroundDeletion')) return 'Foreground';
  return type.defaultPropagation;
}

/** batch/v1 Jobs orphan their Pods by default; kube warns when the request names no policy (registry/batch/job/storage). */
function warnJobOrphans(ctx: Ctx, type: ResourceType, opts: DeleteOptions): void {
  if (type.resource === 'jobs' && type.group === 'batch' && opts.propagationPolicy === undefined && opts.orphanDependents === undefined) {
    ctx.warnings.push(JOB_ORPHAN_WARNING);
  }
}

/** The Status a delete answers when the object is gone (finalizeDelete: details.kind is the resource). */
function deletedStatus(type: ResourceType, obj: KubeObject): unknown {
  const { name, uid } = obj.metadata;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(type.group ? { group: type.group } : {}), kind: type.resource, uid } };
}

/** Pods and custom resources answer the deleted object itself (ReturnDeletedObject); the rest a Status. */
const returnsDeletedObject = (type: ResourceType) => (type.group === '' && type.resource === 'pods') || type.crd !== undefined;

function deleteOne(ctx: Ctx, type: ResourceType, current: KubeObject, opts: DeleteOptions): unknown {
  const name = current.metadata.name!;
  // rest.BeforeDelete checks preconditions first, naming the object by Kind.
  const pre = opts.preconditions ?? {};
  if (pre.uid != null && pre.uid !== current.metadata.uid) throw preconditionFailed(type.kind, type.group, name, 'uid', pre.uid, String(current.metadata.uid));
  if (pre.resourceVersion != null && pre.resourceVersion !== current.metadata.resourceVersion) {
    throw preconditionFailed(type.kind, type.group, name, 'resourceVersion', pre.resourceVersion, String(current.metadata.resourceVersion));
  }
  const policy = policyFor(type, current, opts);
  const dryRun = opts.dryRun?.includes('All') ?? false;
  if (current.metadata.deletionTimestamp) return present(type, current); // deletion already in progress
  const { object, removed } = ctx.store.delete(type, current, policy, dryRun);
  if (removed && !returnsDeletedObject(type)) return deletedStatus(type, object);
  return present(type, object);
}

export function del(ctx: Ctx, type: ResourceType): Reply {
  if (ctx.info.subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  const opts = deleteOptions(ctx.query, parseBody(ctx));
  const current = getOr404(ctx, type);
  warnJobOrphans(ctx, type, opts);
  return { status: 200, body: deleteOne(ctx, type, current, opts) };
}

/**
 * Store.DeleteCollection: lists, then deletes each item with the same DeleteOptions
 * (preconditions included); with kube's default of one worker the first failure other than
 * NotFound ends the request with that error. Answers the list as it was read.
 */
export function deleteCollection(ctx: Ctx, type: ResourceType): Reply {
  const opts = deleteOptions(ctx.query, parseBody(ctx));
  listOptions(ctx.query, false);
  const { pred } = selectorPredicate(type, ctx.query);
  const victims = ctx.store.list(type, ctx.info.namespace).filter(pred);
  warnJobOrphans(ctx, type, opts);
  for (const v of victims) {
    const fresh = ctx.store.get(type, v.metadata.namespace, v.metadata.name!);
    if (fresh) deleteOne(ctx, type, fresh, opts);
  }
  return {
    status: 200,
    body: {
      kind: type.listKind,
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      metadata: { resourceVersion: String(ctx.store.resourceVersion) },
      items: victims.map((v) => present(type, v)),
    },
  };
}
