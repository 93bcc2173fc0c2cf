// Per-type rules applied on writes (kube's registry "strategies"): name validation, what a
// create or update may set, status subresource handling, generation, Secret stringData,
// CRD status, and unknown-field checks for fieldValidation.

import { defaultJob } from './job-defaults.ts';
import { badRequest, invalid, type FieldError } from './errors.ts';
import type { KubeObject, ResourceType } from './types.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export function tracksGeneration(type: ResourceType): boolean {
  return type.crd !== undefined || ['jobs', 'cronjobs', 'customresourcedefinitions'].includes(type.resource);
}

/** metadata.name checks kube applies on create (namespaces are DNS-1123 labels, the rest subdomains). */
export function nameErrors(type: ResourceType, name: string | undefined, generateName: string | undefined): FieldError[] {
  if (!name) return generateName ? [] : [{ field: 'metadata.name', type: 'Required', detail: 'name or generateName is required' }];
  const isLabel = type.resource === 'namespaces' && type.group === '';
  const errs: FieldError[] = [];
  if (isLabel) {
    if (name.length > 63) errs.push({ field: 'metadata.name', type: 'Invalid', value: name, detail: 'must be no more than 63 characters' });
    if (!DNS1123_LABEL.test(name)) errs.push({ field: 'metadata.name', type: 'Invalid', value: name, detail: LABEL_MSG });
  } else {
    if (name.length > 253) errs.push({ field: 'metadata.name', type: 'Invalid', value: name, detail: 'must be no more than 253 characters' });
    if (!DNS1123_SUBDOMAIN.test(name)) errs.push({ field: 'metadata.name', type: 'Invalid', value: name, detail: SUBDOMAIN_MSG });
  }
  return errs;
}

function labelErrors(obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
      errs.push({
        field: `metadata.labels`,
        type: 'Invalid',
        value: v,
        detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
      });
    }
    void k;
  }
  return errs;
}

/** Type-specific validation beyond the name; throws 422 Invalid. */
export function validate(type: ResourceType, obj: KubeObject): void {
  const errs = labelErrors(obj);
  if (type.resource === 'customresourcedefinitions') {
    const spec = (obj['spec'] ?? {}) as Record<string, any>;
    const expected = `${spec['names']?.plural}.${spec['group']}`;
    if (obj.metadata.name !== expected) errs.push({ field: 'metadata.name', type: 'Invalid', value: obj.metadata.name, detail: `must be spec.names.plural+"."+spec.group` });
    if (!Array.isArray(spec['versions']) || spec['versions'].length === 0) errs.push({ field: 'spec.versions', type: 'Invalid', value: null, detail: 'must have exactly one version marked as storage version' });
    if (!spec['names']?.kind) errs.push({ field: 'spec.names.kind', type: 'Required' });
    if (!['Namespaced', 'Cluster'].includes(spec['scope'])) errs.push({ field: 'spec.scope', type: 'NotSupported', value: spec['scope'] ?? '', detail: 'supported values: "Cluster", "Namespaced"' });
  }
  if (type.resource === 'jobs' && type.group === 'batch' && !(obj['spec'] as any)?.template) {
    errs.push({ field: 'spec.template.spec.containers', type: 'Required' });
  }
  if (errs.length > 0) throw invalid(type.kind, type.group, obj.metadata.name ?? '', errs);
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function crdStatus(obj: KubeObject): Record<string, unknown> {
  const spec = (obj['spec'] ?? {}) as Record<string, any>;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const storage = (Array.isArray(spec['versions']) ? spec['versions'] : []).filter((v: any) => v?.storage).map((v: any) => String(v.name));
  return {
    conditions: [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: now, reason: 'NoConflicts', message: 'no conflicts found' },
      { type: 'Established', status: 'True', lastTransitionTime: now, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
    ],
    acceptedNames: spec['names'] ?? {},
    storedVersions: storage,
  };
}

/** What a create may set: no status for status-subresource types, folded stringData, defaults. */
export function prepareForCreate(type: ResourceType, obj: KubeObject): void {
  const m = obj.metadata;
  for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields']) delete m[f];
  if (tracksGeneration(type)) m.generation = 1;
  else delete m.generation;
  if (type.statusSubresource) {
    if (type.resource === 'jobs' && type.group === 'batch') {
      obj['status'] = {};
      defaultJob(obj);
    } else delete obj['status'];
  }
  foldSecret(type, obj);
  if (type.group === '' && type.resource === 'namespaces') {
    obj['spec'] = { finalizers: ['kubernetes'] };
    obj['status'] = { phase: 'Active' };
  }
  if (type.resource === 'customresourcedefinitions') obj['status'] = crdStatus(obj);
}

function foldSecret(type: ResourceType, obj: KubeObject): void {
  if (type.group !== '' || type.resource !== 'secrets') return;
  const stringData = obj['stringData'] as Record<string, string> | undefined;
  if (stringData) {
    obj['data'] = { ...((obj['data'] as object) ?? {}) };
    for (const [k, v] of Object.entries(stringData)) (obj['data'] as Record<string, string>)[k] = b64(String(v));
    delete obj['stringData'];
  }
  obj['type'] ??= 'Opaque';
}

/** JSON with sorted keys: key order carries no meaning in Kubernetes objects. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : val,
  );
}

function withoutMetaStatus(obj: KubeObject): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return canonical(rest);
}

/**
 * Merges an update of the main resource (statusOnly=false) or of /status (true) onto the
 * stored object, keeping what clients may not change.
 */
export function prepareForUpdate(type: ResourceType, old: KubeObject, next: KubeObject, statusOnly: boolean): KubeObject {
  let out: KubeObject;
  if (statusOnly) {
    out = structuredClone(old);
    if (next['status'] === undefined) delete out['status'];
    else out['status'] = next['status'];
  } else {
    out = next;
    if (type.statusSubresource) {
      if (old['status'] === undefined) delete out['status'];
      else out['status'] = structuredClone(old['status']);
    }
    foldSecret(type, out);
  }
  const m = out.metadata;
  const o = old.metadata;
  m.name = o.name;
  if (o.namespace !== undefined) m.namespace = o.namespace;
  else delete m.namespace;
  m.uid = o.uid;
  if (!statusOnly && type.resource === 'jobs' && type.group === 'batch') defaultJob(out);
  m.creationTimestamp = o.creationTimestamp;
  for (const f of ['deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
    if (o[f] !== undefined) m[f] = o[f] as never;
    else delete m[f];
  }
  delete m.managedFields;
  delete m.selfLink;
  if (tracksGeneration(type)) {
    const changed = withoutMetaStatus(old) !== withoutMetaStatus(out);
    m.generation = (o.generation ?? 1) + (changed && !statusOnly ? 1 : 0);
  } else delete m.generation;
  if (type.group === '' && type.resource === 'namespaces') out['spec'] = old['spec'] ?? { finalizers: ['kubernetes'] };
  if (type.resource === 'customresourcedefinitions' && !statusOnly) out['status'] = { ...crdStatus(out), conditions: (old['status'] as any)?.conditions ?? crdStatus(out)['conditions'] };
  if (o.deletionTimestamp) {
    const added = (m.finalizers ?? []).filter((f) => !(o.finalizers ?? []).includes(f));
    if (added.length > 0) {
      throw invalid(type.kind, type.group, o.name ?? '', [{ field: 'metadata.finalizers', type: 'Forbidden', detail: 'no new finalizers can be added if the object is being deleted, found new finalizers ' + JSON.stringify(added) }]);
    }
  }
  if (m.finalizers && m.finalizers.length === 0) delete m.finalizers;
  return out;
}

// ---- unknown fields (fieldValidation) ----

const OBJECT_META_FIELDS = new Set([
  'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields',
]);

function schemaUnknown(node: any, value: unknown, path: string, out: string[]): void {
  if (!node || typeof node !== 'object' || node['x-kubernetes-preserve-unknown-fields'] === true) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => schemaUnknown(node.items, v, `${path}[${i}]`, out));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const props = node.properties as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const child = path ? `${path}.${k}` : k;
    if (props && k in props) schemaUnknown(props[k], v, child, out);
    else if (node.additionalProperties && typeof node.additionalProperties === 'object') schemaUnknown(node.additionalProperties, v, child, out);
    else if (node.additionalProperties !== true) out.push(child);
  }
}

/** Unknown fields, as kube names them (`spec.foo`), checked at the top level and in metadata; CRs against their schema. */
export function unknownFields(type: ResourceType, obj: KubeObject): string[] {
  const out: string[] = [];
  for (const k of Object.keys(obj.metadata ?? {})) if (!OBJECT_META_FIELDS.has(k)) out.push(`metadata.${k}`);
  if (type.schema) {
    const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = obj;
    schemaUnknown(type.schema, rest, '', out);
    return out;
  }
  const allowed = new Set(['apiVersion', 'kind', 'metadata', ...(type.topLevelFields ?? [])]);
  for (const k of Object.keys(obj)) if (!allowed.has(k)) out.push(k);
  return out;
}

/** Drops the named unknown fields (kube prunes them under Ignore/Warn). */
export function prune(obj: KubeObject, fields: string[]): void {
  for (const f of fields) {
    const parts = f.split('.');
    let cur: any = obj;
    for (const p of parts.slice(0, -1)) {
      const m = p.match(/^(.*)\[(\d+)\]$/);
      cur = m ? cur?.[m[1]!]?.[Number(m[2])] : cur?.[p];
    }
    if (cur && typeof cur === 'object') delete cur[parts[parts.length - 1]!];
  }
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export function fieldValidation(query: URLSearchParams): FieldValidation {
  // Values were validated with the request's options (options.ts); "" is the default, Warn.
  const v = query.get('fieldValidation') || 'Warn';
  return v as FieldValidation;
}
