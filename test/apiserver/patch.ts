// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of
// Kubernetes strategic merge patch (merge patch, plus merging the few lists this project's
// objects carry by their merge keys, and `$patch: delete` / `$deleteFromPrimitiveList`).

import { ApiError, badRequest, unsupportedMediaType } from './errors.ts';

type Json = unknown;
const isObj = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// Merge keys of the list fields kube declares patchStrategy=merge on, for the types served here.
const MERGE_KEYS: Record<string, string> = {
  conditions: 'type',
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  env: 'name',
  ports: 'containerPort',
  ownerReferences: 'uid',
  imagePullSecrets: 'name',
  secrets: 'name',
  tolerations: 'key',
};
const PRIMITIVE_SET_LISTS = new Set(['finalizers']);

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return structuredClone(patch);
  if (patch['$patch'] === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch['$patch'] === 'delete') return undefined;
  const out: Record<string, Json> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field])) out[field] = (out[field] as Json[]).filter((x) => !drop.includes(x));
      continue;
    }
    if (v === null) delete out[k];
    else if (Array.isArray(v) && MERGE_KEYS[k] && Array.isArray(out[k])) out[k] = mergeList(out[k] as Json[], v, MERGE_KEYS[k]!);
    else if (Array.isArray(v) && PRIMITIVE_SET_LISTS.has(k) && Array.isArray(out[k])) out[k] = [...new Set([...(out[k] as Json[]), ...v])];
    else if (Array.isArray(v)) out[k] = v.map(stripDirectives);
    else {
      const merged = strategicMergePatch(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith('$')).map(([k, x]) => [k, stripDirectives(x)]));
}

function mergeList(base: Json[], patch: Json[], key: string): Json[] {
  const out = [...base];
  for (const item of patch) {
    if (!isObj(item) || !(key in item)) {
      out.push(item);
      continue;
    }
    const i = out.findIndex((b) => isObj(b) && b[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = strategicMergePatch(out[i], item);
    else out.push(stripDirectives(item));
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new ApiError(422, 'Invalid', `JSON pointer must be empty or start with a "/": ${path}`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, parts: string[], path: string): { parent: Record<string, Json> | Json[]; last: string } {
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObj(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  return { parent: cur, last: parts[parts.length - 1]! };
}

function getAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isObj(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, last } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!(i >= 0 && i < parent.length)) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
    return parent.splice(i, 1)[0];
  }
  if (!(last in parent)) throw new ApiError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  const v = parent[last];
  delete parent[last];
  return v;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return structuredClone(value);
  const { parent, last } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!(i >= 0 && i <= parent.length - (replace ? 1 : 0))) throw new ApiError(422, 'Invalid', `add operation does not apply: doc is missing path: "${path}": missing value`);
    if (replace) parent[i] = structuredClone(value);
    else parent.splice(i, 0, structuredClone(value));
  } else {
    if (replace && !(last in parent)) throw new ApiError(422, 'Invalid', `replace operation does not apply: doc is missing key: ${path}: missing value`);
    parent[last] = structuredClone(value);
  }
  return doc;
}

export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let out = structuredClone(doc);
  for (const raw of ops as JsonPatchOp[]) {
    switch (raw.op) {
      case 'add':
        out = addAt(out, raw.path, raw.value, false);
        break;
      case 'replace':
        out = addAt(out, raw.path, raw.value, true);
        break;
      case 'remove':
        removeAt(out, raw.path);
        break;
      case 'move': {
        const v = removeAt(out, raw.from ?? '');
        out = addAt(out, raw.path, v, false);
        break;
      }
      case 'copy':
        out = addAt(out, raw.path, structuredClone(getAt(out, raw.from ?? '')), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(out, raw.path)) !== JSON.stringify(raw.value)) {
          throw new ApiError(422, 'Invalid', `testing value ${raw.path} failed: test failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${String(raw.op)}`);
    }
  }
  return out;
}

/** Applies a PATCH body of the given content type. */
export function applyPatch(contentType: string, current: Json, patch: Json): Json {
  const ct = contentType.split(';')[0]!.trim().toLowerCase();
  switch (ct) {
    case 'application/merge-patch+json':
      return mergePatch(current, patch);
    case 'application/json-patch+json':
      return jsonPatch(current, patch);
    case 'application/strategic-merge-patch+json':
      return strategicMergePatch(current, patch);
    default:
      throw unsupportedMediaType(ct);
  }
}
