// Decoding of Kubernetes protobuf request bodies. kubectl's typed commands (`kubectl create
// namespace|configmap|secret|serviceaccount|role|rolebinding|clusterrole|clusterrolebinding`)
// send `application/vnd.kubernetes.protobuf`; this turns those into the JSON objects they
// stand for, using the field numbers of k8s.io/api's generated.proto. Responses stay JSON
// (the clients accept it). Other kinds answer 415.

import { ApiError } from './errors.ts';

type Kind = 'string' | 'bytes' | 'int' | 'bool' | 'time' | Schema | { map: 'string' | 'bytes' };
interface Field {
  name: string;
  kind: Kind;
  repeated?: boolean;
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
  7: { name: 'generation', kind: 'int' },
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

const SCHEMAS: Record<string, Schema> = {
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

function decodeMessage(buf: Buffer, schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const r = new Reader(buf);
  while (!r.done) {
    const tag = Number(r.varint());
    const num = tag >>> 3;
    const wire = tag & 7;
    const f = schema[num];
    if (!f) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    if (typeof f.kind === 'object' && 'map' in f.kind) {
      const entry = decodeMessage(r.bytes(), { 1: { name: 'k', kind: 'string' }, 2: { name: 'v', kind: f.kind.map as 'string' } });
      const m = (out[f.name] ??= {}) as Record<string, unknown>;
      m[String(entry['k'] ?? '')] = entry['v'] ?? '';
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
        value = decodeMessage(r.bytes(), f.kind as Schema);
    }
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(value);
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
  const obj = decodeMessage(Buffer.from(String(unknown['raw'] ?? ''), 'base64'), schema);
  return { apiVersion: tm.apiVersion, kind: tm.kind, ...obj };
}
