// Decoding of Kubernetes protobuf request bodies. kubectl's typed commands (`kubectl create
// namespace|configmap|secret|serviceaccount|role|rolebinding|clusterrole|clusterrolebinding`,
// `kubectl create job --from=cronjob/...`) and the DeleteOptions of helm uninstall send
// `application/vnd.kubernetes.protobuf`; this turns those into the JSON objects they
// stand for, using the field numbers of k8s.io/api's generated.proto. Responses stay JSON
// (the clients accept it). Other kinds answer 415.

import { ApiError } from './errors.ts';

type Kind = 'string' | 'bytes' | 'int' | 'bool' | 'time' | 'ignored' | Schema | { map: 'string' | 'bytes' | 'quantity' };
interface Field {
  name: string;
  kind: Kind;
  repeated?: boolean;
  /** an embedded Go struct: its fields sit in the parent's JSON */
  inline?: boolean;
  /** a Go value field with `omitempty`: proto2 always carries it, JSON leaves out its zero value (false, 0) */
  omitEmpty?: boolean;
}
type Schema = { [fieldNumber: number]: Field };

const ownerReference: Schema = {
  1: { name: 'kind', kind: 'string' },
  3: { name: 'name', kind: 'string' },
  4: { name: 'uid', kind: 'string' },
  5: { name: 'apiVersion', kind: 'string' },
  6: { name: 'controller', kind: 'bool' },
  7: { name: 'blockOwnerDeletion', kind: 'bool' },
};
const objectMeta: Schema = {
  1: { name: 'name', kind: 'string' },
  2: { name: 'generateName', kind: 'string' },
  3: { name: 'namespace', kind: 'string' },
  5: { name: 'uid', kind: 'string' },
  6: { name: 'resourceVersion', kind: 'string' },
  7: { name: 'generation', kind: 'int', omitEmpty: true },
  10: { name: 'deletionGracePeriodSeconds', kind: 'int' },
  11: { name: 'labels', kind: { map: 'string' } },
  12: { name: 'annotations', kind: { map: 'string' } },
  13: { name: 'ownerReferences', kind: ownerReference, repeated: true },
  14: { name: 'finalizers', kind: 'string', repeated: true },
};
const policyRule: Schema = {
  1: { name: 'verbs', kind: 'string', repeated: true },
  2: { name: 'apiGroups', kind: 'string', repeated: true },
  3: { name: 'resources', kind: 'string', repeated: true },
  4: { name: 'resourceNames', kind: 'string', repeated: true },
  5: { name: 'nonResourceURLs', kind: 'string', repeated: true },
};
const binding: Schema = {
  1: { name: 'metadata', kind: objectMeta },
  2: {
    name: 'subjects',
    repeated: true,
    kind: { 1: { name: 'kind', kind: 'string' }, 2: { name: 'apiGroup', kind: 'string' }, 3: { name: 'name', kind: 'string' }, 4: { name: 'namespace', kind: 'string' } },
  },
  3: { name: 'roleRef', kind: { 1: { name: 'apiGroup', kind: 'string' }, 2: { name: 'kind', kind: 'string' }, 3: { name: 'name', kind: 'string' } } },
};
const role: Schema = { 1: { name: 'metadata', kind: objectMeta }, 2: { name: 'rules', kind: policyRule, repeated: true } };

// core/v1 and batch/v1 (staging/src/k8s.io/api/{core,batch}/v1/generated.proto): the fields a
// Job or CronJob's Pod template carries when kubectl sends it.
const str = (name: string, repeated = false): Field => ({ name, kind: 'string', ...(repeated ? { repeated } : {}) });
const int = (name: string): Field => ({ name, kind: 'int' });
const bool = (name: string): Field => ({ name, kind: 'bool' });
const flag = (name: string): Field => ({ name, kind: 'bool', omitEmpty: true });
const msg = (name: string, kind: Schema, repeated = false): Field => ({ name, kind, ...(repeated ? { repeated } : {}) });
const stringMap = (name: string): Field => ({ name, kind: { map: 'string' } });
const quantityMap = (name: string): Field => ({ name, kind: { map: 'quantity' } });
const labelSelector: Schema = { 1: stringMap('matchLabels'), 2: msg('matchExpressions', { 1: str('key'), 2: str('operator'), 3: str('values', true) }, true) };
// an embedded LocalObjectReference (field 1) is inline in JSON
const keySelector: Schema = { 1: { name: 'localObjectReference', kind: { 1: str('name') }, inline: true }, 2: str('key'), 3: bool('optional') };
const envVar: Schema = {
  1: str('name'),
  2: str('value'),
  3: msg('valueFrom', {
    1: msg('fieldRef', { 1: str('apiVersion'), 2: str('fieldPath') }),
    2: msg('resourceFieldRef', { 1: str('containerName'), 2: str('resource'), 3: msg('divisor', { 1: str('string') }) }),
    3: msg('configMapKeyRef', keySelector),
    4: msg('secretKeyRef', keySelector),
  }),
};
const seccompProfile: Schema = { 1: str('type'), 2: str('localhostProfile') };
const containerSecurityContext: Schema = {
  1: msg('capabilities', { 1: str('add', true), 2: str('drop', true) }),
  2: bool('privileged'),
  4: int('runAsUser'),
  5: bool('runAsNonRoot'),
  6: bool('readOnlyRootFilesystem'),
  7: bool('allowPrivilegeEscalation'),
  8: int('runAsGroup'),
  9: str('procMount'),
  11: msg('seccompProfile', seccompProfile),
};
const container: Schema = {
  1: str('name'),
  2: str('image'),
  3: str('command', true),
  4: str('args', true),
  5: str('workingDir'),
  7: msg('env', envVar, true),
  8: msg('resources', { 1: quantityMap('limits'), 2: quantityMap('requests') }),
  13: str('terminationMessagePath'),
  14: str('imagePullPolicy'),
  15: msg('securityContext', containerSecurityContext),
  16: flag('stdin'),
  17: flag('stdinOnce'),
  18: flag('tty'),
  20: str('terminationMessagePolicy'),
};
const podSpec: Schema = {
  2: msg('containers', container, true),
  3: str('restartPolicy'),
  4: int('terminationGracePeriodSeconds'),
  5: int('activeDeadlineSeconds'),
  6: str('dnsPolicy'),
  7: stringMap('nodeSelector'),
  8: str('serviceAccountName'),
  9: str('serviceAccount'),
  10: str('nodeName'),
  11: flag('hostNetwork'),
  12: flag('hostPID'),
  13: flag('hostIPC'),
  14: msg('securityContext', { 2: int('runAsUser'), 3: bool('runAsNonRoot'), 4: { name: 'supplementalGroups', kind: 'int', repeated: true }, 5: int('fsGroup'), 6: int('runAsGroup'), 10: msg('seccompProfile', seccompProfile) }),
  15: msg('imagePullSecrets', { 1: str('name') }, true),
  19: str('schedulerName'),
  20: msg('initContainers', container, true),
  21: bool('automountServiceAccountToken'),
  22: msg('tolerations', { 1: str('key'), 2: str('operator'), 3: str('value'), 4: str('effect'), 5: int('tolerationSeconds') }, true),
  24: str('priorityClassName'),
  25: int('priority'),
  30: bool('enableServiceLinks'),
};
const jobSpec: Schema = {
  1: int('parallelism'),
  2: int('completions'),
  3: int('activeDeadlineSeconds'),
  4: msg('selector', labelSelector),
  5: bool('manualSelector'),
  6: msg('template', { 1: msg('metadata', objectMeta), 2: msg('spec', podSpec) }),
  7: int('backoffLimit'),
  8: int('ttlSecondsAfterFinished'),
  9: str('completionMode'),
  10: bool('suspend'),
  12: int('backoffLimitPerIndex'),
  13: int('maxFailedIndexes'),
  14: str('podReplacementPolicy'),
  15: str('managedBy'),
};

/** meta/v1 DeleteOptions (helm uninstall and kubectl delete send it as protobuf). */
const deleteOptions: Schema = {
  1: int('gracePeriodSeconds'),
  2: msg('preconditions', { 1: str('uid'), 2: str('resourceVersion') }),
  3: bool('orphanDependents'),
  4: str('propagationPolicy'),
  5: str('dryRun', true),
};

/** Kinds whose every field that carries a value must be known (the nested ones). */
const STRICT = new Set(['batch/v1/Job', 'v1/DeleteOptions', 'meta.k8s.io/v1/DeleteOptions']);

const SCHEMAS: Record<string, Schema> = {
  'v1/DeleteOptions': deleteOptions,
  'meta.k8s.io/v1/DeleteOptions': deleteOptions,
  // status (3, its zero counters always sent) is dropped on create anyway
  'batch/v1/Job': { 1: msg('metadata', objectMeta), 2: msg('spec', jobSpec), 3: { name: 'status', kind: 'ignored' } },
  'v1/Namespace': {
    1: { name: 'metadata', kind: objectMeta },
    2: { name: 'spec', kind: { 1: { name: 'finalizers', kind: 'string', repeated: true } } },
    3: { name: 'status', kind: { 1: { name: 'phase', kind: 'string' } } },
  },
  'v1/ConfigMap': {
    1: { name: 'metadata', kind: objectMeta },
    2: { name: 'data', kind: { map: 'string' } },
    3: { name: 'binaryData', kind: { map: 'bytes' } },
    4: { name: 'immutable', kind: 'bool' },
  },
  'v1/Secret': {
    1: { name: 'metadata', kind: objectMeta },
    2: { name: 'data', kind: { map: 'bytes' } },
    3: { name: 'type', kind: 'string' },
    4: { name: 'stringData', kind: { map: 'string' } },
    5: { name: 'immutable', kind: 'bool' },
  },
  'v1/ServiceAccount': {
    1: { name: 'metadata', kind: objectMeta },
    3: { name: 'imagePullSecrets', kind: { 1: { name: 'name', kind: 'string' } }, repeated: true },
    4: { name: 'automountServiceAccountToken', kind: 'bool' },
  },
  'rbac.authorization.k8s.io/v1/Role': role,
  'rbac.authorization.k8s.io/v1/ClusterRole': role,
  'rbac.authorization.k8s.io/v1/RoleBinding': binding,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': binding,
};

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const n = Number(this.varint());
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

/**
 * `path` names the message in errors; with `strict`, a field this table does not know that
 * carries a value is refused (415) rather than silently dropped, so a missing transcription
 * cannot lose, say, a securityContext.
 */
function decodeMessage(buf: Buffer, schema: Schema, path = '', strict = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done) {
    const tag = Number(r.varint());
    const num = tag >>> 3;
    const wire = tag & 7;
    const f = schema[num];
    if (!f) {
      const start = r.pos;
      r.skip(wire);
      // empty messages and zero times (e.g. creationTimestamp, status) carry nothing
      const empty = wire === 2 && r.pos - start === 1;
      if (strict && !empty) throw new ApiError(415, 'UnsupportedMediaType', `the test API server cannot decode protobuf field ${num} of ${path || 'the object'}; send application/json`);
      continue;
    }
    let value: unknown;
    if (f.kind === 'ignored') {
      r.skip(wire);
      continue;
    }
    if (typeof f.kind === 'object' && 'map' in f.kind) {
      // a resource.Quantity is a message holding its string form (field 1)
      const valueKind: Kind = f.kind.map === 'quantity' ? { 1: { name: 'string', kind: 'string' } } : f.kind.map;
      const entry = decodeMessage(r.bytes(), { 1: { name: 'k', kind: 'string' }, 2: { name: 'v', kind: valueKind } }, `${path}.${f.name}`, strict);
      const m = (out[f.name] ??= {}) as Record<string, unknown>;
      const v = entry['v'];
      m[String(entry['k'] ?? '')] = f.kind.map === 'quantity' ? ((v as { string?: string } | undefined)?.string ?? '') : (v ?? '');
      continue;
    }
    switch (f.kind) {
      case 'string':
        value = r.bytes().toString('utf8');
        break;
      case 'bytes':
        value = r.bytes().toString('base64');
        break;
      case 'int':
        value = Number(BigInt.asIntN(64, r.varint()));
        break;
      case 'bool':
        value = r.varint() !== 0n;
        break;
      default:
        value = decodeMessage(r.bytes(), f.kind as Schema, `${path}.${f.name}`, strict);
    }
    if (f.omitEmpty && (value === false || value === 0)) continue;
    if (f.inline) Object.assign(out, value);
    else if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(value);
    else if (value !== '') out[f.name] = value; // Go's omitempty: proto2 writes empty optionals

  }
  return out;
}

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** The JSON object a `k8s\0`-enveloped protobuf body encodes. */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\u0000') throw new ApiError(400, 'BadRequest', 'provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]');
  const unknown = decodeMessage(body.subarray(4), {
    1: { name: 'typeMeta', kind: { 1: { name: 'apiVersion', kind: 'string' }, 2: { name: 'kind', kind: 'string' } } },
    2: { name: 'raw', kind: 'bytes' },
  });
  const tm = (unknown['typeMeta'] ?? {}) as { apiVersion?: string; kind?: string };
  const schema = SCHEMAS[`${tm.apiVersion}/${tm.kind}`];
  if (!schema) {
    throw new ApiError(415, 'UnsupportedMediaType', `the test API server cannot decode protobuf ${tm.apiVersion}/${tm.kind}; send application/json`);
  }
  const obj = decodeMessage(Buffer.from(String(unknown['raw'] ?? ''), 'base64'), schema, `${tm.apiVersion}/${tm.kind}`, STRICT.has(`${tm.apiVersion}/${tm.kind}`));
  return { apiVersion: tm.apiVersion, kind: tm.kind, ...obj };
}
