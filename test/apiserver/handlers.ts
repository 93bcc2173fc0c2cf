// Resource verbs: get, list, create, update, patch, delete, deletecollection (watch is in
// watch.ts). Each handler takes the parsed request and returns a reply or throws ApiError.

import { randomInt, randomUUID } from 'node:crypto';
import { ApiError, alreadyExists, badRequest, conflict, forbidden, invalid, notFound, notFoundPath, OPTIMISTIC_LOCK, unsupportedMediaType } from './errors.ts';
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

function parseBody(ctx: Ctx): unknown {
  if (ctx.contentType.split(';')[0]!.trim() === PROTOBUF && ctx.body.length > 0) return decodeProtobuf(ctx.body);
  const text = ctx.body.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${(e as Error).message})`);
  }
}

function objectBody(ctx: Ctx, type: ResourceType): KubeObject {
  const body = parseBody(ctx);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body of the request must be a JSON object');
  const obj = body as KubeObject;
  const gv = type.group ? `${type.group}/${type.version}` : type.version;
  if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
    throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`);
  }
  if (obj.kind !== undefined && obj.kind !== type.kind) {
    throw badRequest(`${obj.kind} in version "${type.version}" cannot be handled as a ${type.kind}: the kind in the data (${obj.kind}) does not match the expected kind (${type.kind})`);
  }
  if (obj.metadata === undefined || obj.metadata === null) obj.metadata = {};
  if (typeof obj.metadata !== 'object') throw badRequest(`${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: json: cannot unmarshal metadata`);
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
  if (!type.namespaced) {
    delete obj.metadata.namespace;
    return;
  }
  const ns = ctx.info.namespace;
  if (ns === undefined) throw notFoundPath();
  if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== '' && obj.metadata.namespace !== ns) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  obj.metadata.namespace = ns;
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
  const limit = Number(ctx.query.get('limit') ?? '0');
  if (!Number.isInteger(limit) || limit < 0) throw badRequest(`limit must be a non-negative integer`);
  const token = ctx.query.get('continue');
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

  const items: KubeObject[] = [];
  let i = 0;
  for (; i < candidates.length; i++) {
    if (limit > 0 && items.length >= limit) break;
    const o = candidates[i]!;
    if (pred(o)) items.push(o);
  }
  // any more matching items left? (kube may hand out a token that yields an empty page; we do not)
  let more = false;
  let remaining = 0;
  for (let j = i; j < candidates.length; j++) {
    if (pred(candidates[j]!)) {
      more = true;
      remaining++;
      if (filtered) break;
    }
  }
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
  const name = ctx.info.name!;
  if (next.metadata.name !== undefined && next.metadata.name !== name) {
    throw badRequest(`the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`);
  }
  if (type.namespaced && next.metadata.namespace && next.metadata.namespace !== ctx.info.namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
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

interface DeleteOptions {
  propagationPolicy?: string;
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: string[];
}

function deleteOptions(ctx: Ctx): DeleteOptions {
  const body = parseBody(ctx);
  const opts: DeleteOptions = body && typeof body === 'object' ? { ...(body as DeleteOptions) } : {};
  const q = ctx.query;
  if (q.has('propagationPolicy')) opts.propagationPolicy = q.get('propagationPolicy')!;
  if (q.has('orphanDependents')) opts.orphanDependents = q.get('orphanDependents') === 'true';
  if (q.has('gracePeriodSeconds')) opts.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
  if (q.getAll('dryRun').length > 0) opts.dryRun = q.getAll('dryRun');
  if (opts.propagationPolicy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(opts.propagationPolicy)) {
    throw invalid('DeleteOptions', '', '', [{ field: 'propagationPolicy', type: 'NotSupported', value: opts.propagationPolicy, detail: 'supported values: "Foreground", "Background", "Orphan", "nil"' }]);
  }
  if (opts.propagationPolicy !== undefined && opts.orphanDependents !== undefined) {
    throw invalid('DeleteOptions', '', '', [{ field: 'propagationPolicy', type: 'Invalid', value: opts.propagationPolicy, detail: 'orphanDependents and deletionPropagation cannot be both set' }]);
  }
  if (opts.gracePeriodSeconds !== undefined && !(opts.gracePeriodSeconds >= 0)) {
    throw invalid('DeleteOptions', '', '', [{ field: 'gracePeriodSeconds', type: 'Invalid', value: opts.gracePeriodSeconds, detail: 'must be >= 0' }]);
  }
  return opts;
}

function policyFor(type: ResourceType, obj: KubeObject, opts: DeleteOptions, ctx: Ctx): Propagation {
  if (opts.propagationPolicy) return opts.propagationPolicy as Propagation;
  if (opts.orphanDependents !== undefined) return opts.orphanDependents ? 'Orphan' : 'Background';
  if (obj.metadata.finalizers?.includes('orphan')) return 'Orphan';
  if (obj.metadata.finalizers?.includes('foregroundDeletion')) return 'Foreground';
  if (type.resource === 'jobs' && type.group === 'batch') {
    ctx.warnings.push('child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning');
  }
  return type.defaultPropagation;
}

function deleteOne(ctx: Ctx, type: ResourceType, current: KubeObject, opts: DeleteOptions): { body: unknown } {
  const name = current.metadata.name!;
  const pre = opts.preconditions ?? {};
  if (pre.uid !== undefined && pre.uid !== null && pre.uid !== current.metadata.uid) {
    throw conflict(type.resource, type.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`);
  }
  if (pre.resourceVersion !== undefined && pre.resourceVersion !== null && pre.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(type.resource, type.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
  }
  const policy = policyFor(type, current, opts, ctx);
  if (opts.dryRun?.includes('All')) return { body: present(type, current) };
  if (current.metadata.deletionTimestamp) return { body: present(type, current) }; // deletion already in progress
  const { object, removed } = ctx.store.delete(type, current, policy);
  if (removed && !(type.group === '' && type.resource === 'pods') && !type.crd) {
    return {
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(type.group ? { group: type.group } : {}), kind: type.resource, uid: current.metadata.uid } },
    };
  }
  return { body: present(type, object) };
}

export function del(ctx: Ctx, type: ResourceType): Reply {
  if (ctx.info.subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  const opts = deleteOptions(ctx);
  const current = getOr404(ctx, type);
  return { status: 200, ...deleteOne(ctx, type, current, opts) };
}

export function deleteCollection(ctx: Ctx, type: ResourceType): Reply {
  const opts = deleteOptions(ctx);
  const { pred } = selectorPredicate(type, ctx.query);
  const victims = ctx.store.list(type, ctx.info.namespace).filter(pred);
  const deleted: KubeObject[] = [];
  for (const v of victims) {
    const fresh = ctx.store.get(type, v.metadata.namespace, v.metadata.name!);
    if (!fresh) continue;
    deleteOne(ctx, type, fresh, { ...opts, preconditions: undefined } as DeleteOptions);
    deleted.push(present(type, fresh));
  }
  return {
    status: 200,
    body: { kind: type.listKind, apiVersion: type.group ? `${type.group}/${type.version}` : type.version, metadata: { resourceVersion: String(ctx.store.resourceVersion) }, items: deleted },
  };
}
