// The request options kube-apiserver decodes and validates before it touches storage: query
// parameters (CreateOptions, UpdateOptions, PatchOptions, DeleteOptions, ListOptions), the
// DeleteOptions body, and the body's name/namespace against the URL. Every refusal here is a
// refusal of the request's shape (ApiError.contract): kube refuses it whatever the cluster holds.
//
// Sources (kubernetes/kubernetes): staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
// {create,update,patch,delete,get,rest}.go; apimachinery pkg/apis/meta/v1/validation/validation.go
// (ValidateDryRun, ValidateFieldManager, ValidateFieldValidation, ValidateDeleteOptions,
// ValidatePatchOptions); apimachinery pkg/apis/meta/internalversion/validation (ValidateListOptions);
// apiserver pkg/storage (continue with an explicit resourceVersion).

import { ApiError, badRequest, contractError, invalid, methodNotAllowed, type FieldError } from './errors.ts';
import type { RequestInfo } from './requestinfo.ts';
import type { ResourceType } from './types.ts';

export interface DeleteOptions {
  propagationPolicy?: string;
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string | null; resourceVersion?: string | null } | null;
  dryRun?: string[];
}

const FIELD_MANAGER_MAX = 128;
const FIELD_VALIDATION = ['', 'Ignore', 'Strict', 'Warn'];
const PROPAGATION = ['Foreground', 'Background', 'Orphan'];

/** 422 on `<Kind>Options.meta.k8s.io ""`, as the handlers wrap option validation errors. */
function optionsInvalid(kind: string, errs: FieldError[]): ApiError {
  return contractError(invalid(kind, 'meta.k8s.io', '', errs));
}

function refuse(message: string): ApiError {
  return contractError(badRequest(message));
}

// Go's strconv errors, as the query-parameter conversion (apimachinery runtime/conversion.go)
// reports them: the handlers answer 400 with the error's text.
function int64Param(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw refuse(`strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}

// runtime.Convert_Slice_string_To_bool: lenient, never an error; 0/f/false/n/no (any case) is
// false, anything else true.
function boolParam(q: URLSearchParams, name: string): boolean | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  return !['0', 'f', 'false', 'n', 'no'].includes(v.toLowerCase());
}

function dryRunErrors(dryRun: string[]): FieldError[] {
  return dryRun.every((v) => v === 'All') ? [] : [{ field: 'dryRun', type: 'NotSupported', value: dryRun, detail: 'supported values: "All"' }];
}

function fieldManagerErrors(fieldManager: string): FieldError[] {
  const errs: FieldError[] = [];
  if (Buffer.byteLength(fieldManager) > FIELD_MANAGER_MAX) errs.push({ field: 'fieldManager', type: 'TooLong', value: fieldManager, detail: `must have at most ${FIELD_MANAGER_MAX} bytes` });
  [...fieldManager].forEach((ch, i) => {
    if (!/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) {
      const cp = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      errs.push({ field: 'fieldManager', type: 'Invalid', value: fieldManager, detail: `invalid character U+${cp} (at position ${i})` });
    }
  });
  return errs;
}

function fieldValidationErrors(q: URLSearchParams): FieldError[] {
  const v = q.get('fieldValidation') ?? '';
  return FIELD_VALIDATION.includes(v) ? [] : [{ field: 'fieldValidation', type: 'NotSupported', value: v, detail: `supported values: ${FIELD_VALIDATION.map((x) => JSON.stringify(x)).join(', ')}` }];
}

/** CreateOptions / UpdateOptions (ValidateCreateOptions, ValidateUpdateOptions). */
function writeOptions(kind: 'CreateOptions' | 'UpdateOptions', q: URLSearchParams): void {
  const errs = [...fieldManagerErrors(q.get('fieldManager') ?? ''), ...dryRunErrors(q.getAll('dryRun')), ...fieldValidationErrors(q)];
  if (errs.length > 0) throw optionsInvalid(kind, errs);
}

/** PatchOptions (ValidatePatchOptions): apply needs a fieldManager, force only with apply. */
function patchOptions(q: URLSearchParams, contentType: string): void {
  const apply = contentType.startsWith('application/apply-patch');
  const force = boolParam(q, 'force');
  const errs: FieldError[] = [];
  if (!apply && force !== undefined) errs.push({ field: 'force', type: 'Forbidden', detail: 'may not be specified for non-apply patch' });
  if (apply && !q.get('fieldManager')) errs.push({ field: 'fieldManager', type: 'Required', detail: 'is required for apply patch' });
  errs.push(...fieldManagerErrors(q.get('fieldManager') ?? ''), ...dryRunErrors(q.getAll('dryRun')), ...fieldValidationErrors(q));
  if (errs.length > 0) throw optionsInvalid('PatchOptions', errs);
}

/**
 * DeleteOptions: from the body when there is one (the query is then ignored, as delete.go
 * decodes one or the other), else from the query; then ValidateDeleteOptions.
 */
export function deleteOptions(q: URLSearchParams, body: unknown): DeleteOptions {
  let opts: DeleteOptions;
  if (body !== undefined) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw refuse('decoded object cannot be converted to DeleteOptions');
    const b = body as Record<string, unknown> & DeleteOptions;
    if (b['kind'] !== undefined && b['kind'] !== 'DeleteOptions') throw refuse('decoded object cannot be converted to DeleteOptions');
    if (b.gracePeriodSeconds !== undefined && b.gracePeriodSeconds !== null && !Number.isInteger(b.gracePeriodSeconds)) {
      throw refuse('json: cannot unmarshal into Go struct field DeleteOptions.gracePeriodSeconds of type int64');
    }
    opts = {
      ...(b.propagationPolicy != null ? { propagationPolicy: b.propagationPolicy } : {}),
      ...(b.orphanDependents != null ? { orphanDependents: b.orphanDependents } : {}),
      ...(b.gracePeriodSeconds != null ? { gracePeriodSeconds: b.gracePeriodSeconds } : {}),
      ...(b.preconditions != null ? { preconditions: b.preconditions } : {}),
      ...(Array.isArray(b.dryRun) ? { dryRun: b.dryRun } : {}),
    };
  } else {
    const grace = int64Param(q, 'gracePeriodSeconds');
    const orphan = boolParam(q, 'orphanDependents');
    opts = {
      ...(q.has('propagationPolicy') ? { propagationPolicy: q.get('propagationPolicy')! } : {}),
      ...(orphan !== undefined ? { orphanDependents: orphan } : {}),
      ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
      ...(q.getAll('dryRun').length > 0 ? { dryRun: q.getAll('dryRun') } : {}),
    };
  }
  const errs: FieldError[] = [];
  if (opts.orphanDependents !== undefined && opts.propagationPolicy !== undefined) {
    errs.push({ field: 'propagationPolicy', type: 'Invalid', value: opts.propagationPolicy, detail: 'orphanDependents and deletionPropagation cannot be both set' });
  }
  if (opts.propagationPolicy !== undefined && !PROPAGATION.includes(opts.propagationPolicy)) {
    errs.push({ field: 'propagationPolicy', type: 'NotSupported', value: opts.propagationPolicy, detail: 'supported values: "Foreground", "Background", "Orphan", "nil"' });
  }
  errs.push(...dryRunErrors(opts.dryRun ?? []));
  if (errs.length > 0) throw optionsInvalid('DeleteOptions', errs);
  // rest.BeforeDelete: a negative grace period counts as 1 s, not as an error.
  if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds < 0) opts.gracePeriodSeconds = 1;
  return opts;
}

/** ListOptions: limit, resourceVersion(Match), continue (ValidateListOptions + storage's rule). */
export interface ListOptions {
  limit: number;
  continueToken: string | undefined;
  resourceVersion: string | undefined;
}

export function listOptions(q: URLSearchParams, watch: boolean): ListOptions {
  const limit = int64Param(q, 'limit') ?? 0;
  int64Param(q, 'timeoutSeconds');
  const rv = q.get('resourceVersion') ?? '';
  const match = q.get('resourceVersionMatch') ?? '';
  const cont = q.get('continue') ?? '';
  if (!watch) {
    const errs: FieldError[] = [];
    if (match !== '') {
      if (rv === '') errs.push({ field: 'resourceVersionMatch', type: 'Forbidden', detail: 'resourceVersionMatch is forbidden unless resourceVersion is provided' });
      if (cont !== '') errs.push({ field: 'resourceVersionMatch', type: 'Forbidden', detail: 'resourceVersionMatch is forbidden when continue is provided' });
      if (match !== 'Exact' && match !== 'NotOlderThan') errs.push({ field: 'resourceVersionMatch', type: 'NotSupported', value: match, detail: 'supported values: "Exact", "NotOlderThan", ""' });
      if (match === 'Exact' && rv === '0') errs.push({ field: 'resourceVersionMatch', type: 'Forbidden', detail: 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"' });
    }
    if (q.has('sendInitialEvents')) errs.push({ field: 'sendInitialEvents', type: 'Forbidden', detail: 'sendInitialEvents is forbidden for list' });
    if (errs.length > 0) throw optionsInvalid('ListOptions', errs);
  }
  if (rv !== '' && !/^\d+$/.test(rv)) throw refuse(`invalid resource version: strconv.ParseUint: parsing ${JSON.stringify(rv)}: invalid syntax`);
  // storage.ValidateListOptions: a continue token carries its own revision.
  if (cont !== '' && rv !== '' && rv !== '0') throw refuse('specifying resource version is not allowed when using continue');
  return { limit: Math.max(0, limit), continueToken: cont || undefined, resourceVersion: rv || undefined };
}

/** The name and namespace of a PUT body against the URL (rest.go checkName). */
export function checkUpdateName(info: RequestInfo, obj: { metadata?: { name?: string; namespace?: string } }): void {
  const name = obj.metadata?.name ?? '';
  if (name !== info.name) throw refuse(`the name of the object (${name}) does not match the name on the URL (${info.name})`);
  const ns = obj.metadata?.namespace ?? '';
  if (info.namespace && ns !== '' && ns !== info.namespace) throw refuse(`the namespace of the object (${ns}) does not match the namespace on the URL (${info.namespace})`);
}

/** A POST body's namespace against the URL (EnsureObjectNamespaceMatchesRequestNamespace). */
export function checkCreateNamespace(type: ResourceType, info: RequestInfo, obj: { metadata: { namespace?: string } }): void {
  const want = type.namespaced ? (info.namespace ?? '') : '';
  const have = obj.metadata.namespace ?? '';
  if (have === want || have === '') obj.metadata.namespace = want || undefined;
  else if (want === '') delete obj.metadata.namespace;
  else throw refuse('the namespace of the provided object does not match the namespace sent on the request');
  if (obj.metadata.namespace === undefined) delete obj.metadata.namespace;
}

/**
 * Validates a resource request's options before anything else happens to it (kube runs this in
 * the handler, after authentication, authorization and APF: the server throws the result then).
 */
export function checkRequestOptions(type: ResourceType, info: RequestInfo, q: URLSearchParams, contentType: string): void {
  switch (info.verb) {
    case 'list':
    case 'watch':
      listOptions(q, info.verb === 'watch');
      return;
    case 'create':
      writeOptions('CreateOptions', q);
      return;
    case 'update':
      writeOptions('UpdateOptions', q);
      return;
    case 'patch': {
      // patch.go refuses an unsupported patch type (415) before it decodes options; this server
      // does not implement server-side apply, so apply patches get that 415 first.
      const patchType = contentType.split(';')[0]!.trim().toLowerCase();
      if (!patchType.startsWith('application/apply-patch')) patchOptions(q, patchType);
      return;
    }
    case 'deletecollection':
      // Namespaced resources have no deletecollection route across all namespaces.
      if (type.namespaced && info.namespace === undefined) throw contractError(methodNotAllowed());
      listOptions(q, false);
      return;
  }
}
