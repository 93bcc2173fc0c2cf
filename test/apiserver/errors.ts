// Kubernetes `Status` failures with the reasons and message shapes kube-apiserver uses,
// so clients (client-node, kubectl) react exactly as they would against a real cluster.

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: Array<{ reason: string; message: string; field?: string }>;
  retryAfterSeconds?: number;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { continue?: string };
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

/** A failure to be answered as a Status; thrown anywhere in the request pipeline. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  readonly headers: Record<string, string>;
  continueToken: string | undefined;
  /**
   * Refused for the request's own shape (query parameters, DeleteOptions, body against URL),
   * not for the cluster's state: kube-apiserver refuses it whatever the data. The server
   * records these as contract violations (see contract.ts).
   */
  contract = false;

  constructor(code: number, reason: string, message: string, details?: StatusDetails, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.headers = headers;
  }

  toStatus(): StatusBody {
    const details = this.details ? compact(this.details) : undefined;
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: this.continueToken ? { continue: this.continueToken } : {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(details && Object.keys(details).length > 0 ? { details } : {}),
      code: this.code,
    };
  }
}

// Empty strings are omitted on the wire (Go `omitempty`).
function compact(d: StatusDetails): StatusDetails {
  const out: StatusDetails = {};
  if (d.name) out.name = d.name;
  if (d.group) out.group = d.group;
  if (d.kind) out.kind = d.kind;
  if (d.causes?.length) out.causes = d.causes;
  if (d.retryAfterSeconds !== undefined) out.retryAfterSeconds = d.retryAfterSeconds;
  return out;
}

/** `jobs.batch`, or `pods` for the core group: how the real server names a resource in messages. */
export function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, { name, group, kind: resource });
}

export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, { name, group, kind: resource });
}

/**
 * 409 of a failed delete precondition. rest.BeforeDelete names the object by its Kind, not its
 * resource (`Job.batch "j1"`, details.kind `Job`), unlike the storage layer's conflicts.
 */
export function preconditionFailed(kind: string, group: string, name: string, what: 'uid' | 'resourceVersion', wanted: string, actual: string): ApiError {
  const why =
    what === 'uid'
      ? `the UID in the precondition (${wanted}) does not match the UID in record (${actual}). The object might have been deleted and then recreated`
      : `the ResourceVersion in the precondition (${wanted}) does not match the ResourceVersion in record (${actual}). The object might have been modified`;
  return conflict(kind, group, name, why);
}

export function conflict(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`, {
    name,
    group,
    kind: resource,
  });
}

export const OPTIMISTIC_LOCK = 'the object has been modified; please apply your changes to the latest version and try again';

export interface FieldError {
  field: string;
  type: 'Required' | 'Invalid' | 'Forbidden' | 'NotSupported' | 'Duplicate' | 'TooLong';
  value?: unknown;
  detail?: string;
}

const causeReason: Record<FieldError['type'], string> = {
  Required: 'FieldValueRequired',
  Invalid: 'FieldValueInvalid',
  Forbidden: 'FieldValueForbidden',
  NotSupported: 'FieldValueNotSupported',
  Duplicate: 'FieldValueDuplicate',
  TooLong: 'FieldValueTooLong',
};

function fieldErrorText(e: FieldError): string {
  switch (e.type) {
    case 'Required':
      return `Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'Forbidden':
      return `Forbidden${e.detail ? `: ${e.detail}` : ''}`;
    case 'TooLong':
      return `Too long${e.detail ? `: ${e.detail}` : ''}`;
    default:
      return `${e.type === 'Invalid' ? 'Invalid value' : e.type === 'NotSupported' ? 'Unsupported value' : 'Duplicate value'}: ${goValue(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
  }
}

// field.Error's rendering (apimachinery util/validation/field/errors.go): strings %q, int64
// and bool %v, anything else %#v (a []string is `[]string{"a", "b"}`).
function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}`;
  if (typeof v === 'number') return Number.isInteger(v) && v === 0 ? '0x0' : String(v);
  return JSON.stringify(v);
}

/** 422 Invalid, `Job.batch "x" is invalid: metadata.name: Required value: ...` */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  const parts = errors.map((e) => `${e.field}: ${fieldErrorText(e)}`);
  const summary = parts.length === 1 ? parts[0]! : `[${parts.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${qualified(kind, group)} "${name}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: errors.map((e) => ({ reason: causeReason[e.type], message: fieldErrorText(e), field: e.field })),
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** A refusal of the request's shape (see ApiError.contract). */
export function contractError(err: ApiError): ApiError {
  err.contract = true;
  return err;
}

/**
 * The 429 of API Priority and Fairness (and of max-in-flight): not a Status but Go's
 * http.Error, plain text, with Retry-After (kube: 1-32 s). server/filters/priority-and-fairness.go
 * and maxinflight.go `tooManyRequests`. One helper for every 429 the test server sends.
 */
export const APF_TOO_MANY_REQUESTS = 'Too many requests, please try again later.';
export function apfTooManyRequests(retryAfterSeconds = 1): { status: 429; headers: Record<string, string>; body: string } {
  return {
    status: 429,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'retry-after': String(retryAfterSeconds) },
    body: `${APF_TOO_MANY_REQUESTS}\n`,
  };
}

export function forbidden(resource: string, group: string, name: string, why: string): ApiError {
  const subject = name ? `${qualified(resource, group)} "${name}"` : qualified(resource, group);
  return new ApiError(403, 'Forbidden', `${subject} is forbidden: ${why}`, { name, group, kind: resource });
}

export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

/** go-restful's 405 for a route without that method, as kube's ServiceErrorHandler wraps it. */
export function methodNotAllowed(): ApiError {
  return new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {
    causes: [{ reason: 'UnexpectedServerResponse', message: '405: Method Not Allowed' }],
  });
}

export function gone(reason: 'Gone' | 'Expired', message: string): ApiError {
  return new ApiError(410, reason, message);
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${contentType})`);
}

export function notFoundPath(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}

const reasonByCode: Record<number, [string, string]> = {
  400: ['BadRequest', 'the server rejected our request for an unknown reason'],
  401: ['Unauthorized', 'Unauthorized'],
  403: ['Forbidden', 'forbidden'],
  404: ['NotFound', 'the server could not find the requested resource'],
  405: ['MethodNotAllowed', 'the server does not allow this method on the requested resource'],
  406: ['NotAcceptable', 'the server was unable to respond with a content type that the client supports'],
  409: ['Conflict', 'the server reported a conflict'],
  410: ['Gone', 'the resource requested is no longer available'],
  413: ['RequestEntityTooLarge', 'the request entity is too large'],
  415: ['UnsupportedMediaType', 'the server was unable to process this media type'],
  422: ['Invalid', 'the server rejected our request due to an error in our request'],
  429: ['TooManyRequests', 'Too many requests, please try again later.'],
  500: ['InternalError', 'an error on the server ("") has prevented the request from succeeding'],
  502: ['InternalError', 'bad gateway'],
  503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
  504: ['Timeout', 'the server was unable to return a response in the time allotted, but may still be processing the request'],
};

/** A Status for an arbitrary code (fault injection): the reason kube uses for that code. */
export function fromCode(code: number, reason?: string, message?: string, details: StatusDetails = {}, retryAfterSeconds?: number): ApiError {
  const [defReason, defMessage] = reasonByCode[code] ?? (code >= 500 ? ['InternalError', 'an error on the server has prevented the request from succeeding'] : ['Unknown', 'unknown']);
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  return new ApiError(code, reason ?? defReason, message ?? defMessage, retryAfterSeconds !== undefined ? { ...details, retryAfterSeconds } : details, headers);
}
