// OpenAPI v3 (/openapi/v3 and one document per group-version). kubectl reads it to decide
// whether the server does field validation itself: it looks for a PATCH operation tagged
// with the kind's x-kubernetes-group-version-kind that takes a `fieldValidation` query
// parameter; then it sends fieldValidation=Strict instead of validating client-side.
// Schemas are shallow for built-ins (object with the top-level fields) and the CRD's own
// openAPIV3Schema for custom resources.

import { createHash } from 'node:crypto';
import { notFoundPath } from './errors.ts';
import type { Catalogue } from './resources.ts';
import type { ResourceType } from './types.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function schemaName(t: ResourceType): string {
  if (t.crd) return `${t.group.split('.').reverse().join('.')}.${t.version}.${t.kind}`;
  const short = t.group === '' ? 'core' : t.group.replace(/\.k8s\.io$/, '').replace(/\./g, '_');
  return `io.k8s.api.${short}.${t.version}.${t.kind}`;
}

function param(name: string, description: string): unknown {
  return { name, in: 'query', description, schema: { type: 'string', uniqueItems: true } };
}

const WRITE_PARAMS = [
  param('dryRun', 'When present, indicates that modifications should not be persisted.'),
  param('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  param('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.'),
];
const LIST_PARAMS = ['labelSelector', 'fieldSelector', 'limit', 'continue', 'resourceVersion', 'watch', 'timeoutSeconds', 'allowWatchBookmarks'].map((n) => param(n, n));

function schemaFor(t: ResourceType): Record<string, unknown> {
  const gvk = [{ group: t.group, version: t.version, kind: t.kind }];
  if (t.schema) return { ...t.schema, 'x-kubernetes-group-version-kind': gvk };
  const properties: Record<string, unknown> = {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  };
  for (const f of t.topLevelFields ?? []) properties[f] = { 'x-kubernetes-preserve-unknown-fields': true };
  return { type: 'object', properties, 'x-kubernetes-group-version-kind': gvk };
}

function operations(t: ResourceType): Record<string, unknown> {
  const ref = { $ref: `#/components/schemas/${schemaName(t)}` };
  const gvk = { group: t.group, version: t.version, kind: t.kind };
  const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
  const op = (action: string, params: unknown[], body: string[] | undefined) => ({
    operationId: `${action}${t.kind}`,
    parameters: params,
    ...(body ? { requestBody: { content: Object.fromEntries(body.map((b) => [b, { schema: b.includes('patch') ? { type: 'object' } : ref }])), required: true } } : {}),
    responses: ok,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
  });
  const patchTypes = ['application/json-patch+json', 'application/merge-patch+json', ...(t.crd ? [] : ['application/strategic-merge-patch+json']), 'application/apply-patch+yaml'];
  const base = `/${gvPath(t.group, t.version)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.resource}`;
  const item = {
    get: op('get', [], undefined),
    put: op('put', WRITE_PARAMS, ['application/json']),
    patch: op('patch', [...WRITE_PARAMS, param('force', 'Force is going to "force" Apply requests.')], patchTypes),
    delete: op('delete', [param('dryRun', 'dryRun'), param('gracePeriodSeconds', 'gracePeriodSeconds'), param('propagationPolicy', 'propagationPolicy')], ['application/json']),
  };
  const paths: Record<string, unknown> = {
    [base]: { get: op('list', LIST_PARAMS, undefined), post: op('post', WRITE_PARAMS, ['application/json']), delete: op('deletecollection', LIST_PARAMS, undefined) },
    [`${base}/{name}`]: item,
  };
  if (t.namespaced) paths[`/${gvPath(t.group, t.version)}/${t.resource}`] = { get: op('list', LIST_PARAMS, undefined) };
  if (t.statusSubresource) paths[`${base}/{name}/status`] = { get: item.get, put: item.put, patch: item.patch };
  return paths;
}

function document(catalogue: Catalogue, group: string, version: string): unknown {
  const types = catalogue.inGroupVersion(group, version);
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0' },
    paths: Object.assign({}, ...types.map(operations)),
    components: { schemas: Object.fromEntries(types.map((t) => [schemaName(t), schemaFor(t)])) },
  };
}

function hash(doc: unknown): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
}

/** The OpenAPI v3 answer for this path, or undefined when the path is not under /openapi/v3. */
export function openapi(catalogue: Catalogue, path: string): unknown {
  const p = path.replace(/\/+$/, '');
  if (p === '/openapi/v3') {
    const paths: Record<string, unknown> = {};
    for (const [group, versions] of catalogue.groupVersions()) {
      for (const v of versions) paths[gvPath(group, v)] = { serverRelativeURL: `/openapi/v3/${gvPath(group, v)}?hash=${hash(document(catalogue, group, v))}` };
    }
    return { paths };
  }
  const m = p.match(/^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/);
  if (!m) return undefined;
  const [group, version] = m[1] ? ['', m[1]] : [m[2]!, m[3]!];
  if (!catalogue.groupVersions().get(group)?.includes(version)) throw notFoundPath();
  return document(catalogue, group, version);
}
