// The resource catalogue: built-in types, and types registered by CustomResourceDefinitions.

import type { KubeObject, PrintColumn, ResourceType } from './types.ts';

/** kube's duration.HumanDuration, as used for the AGE column. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 192) return h % 24 === 0 ? `${Math.floor(h / 24)}d` : `${Math.floor(h / 24)}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`;
  const y = Math.floor(h / 24 / 365);
  if (y < 8) return `${y}y${Math.floor(h / 24) % 365}d`;
  return `${y}y`;
}

function get(obj: unknown, path: string[]): unknown {
  let cur: unknown = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

const nameCol: PrintColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  value: (o) => o.metadata.name,
};
const ageCol: PrintColumn = {
  name: 'Age',
  type: 'string',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  value: (o, now) => (o.metadata.creationTimestamp ? humanDuration(now - Date.parse(o.metadata.creationTimestamp)) : '<unknown>'),
};

function hasCondition(o: KubeObject, type: string): boolean {
  const conds = get(o, ['status', 'conditions']);
  return Array.isArray(conds) && conds.some((c) => c?.type === type && c?.status === 'True');
}

const jobColumns: PrintColumn[] = [
  nameCol,
  {
    name: 'Status',
    type: 'string',
    description: 'Status of the job.',
    value: (o) =>
      hasCondition(o, 'Complete') ? 'Complete' : hasCondition(o, 'Failed') ? 'Failed' : o.metadata.deletionTimestamp ? 'Terminating' : 'Running',
  },
  {
    name: 'Completions',
    type: 'string',
    description: 'The desired number of successfully finished pods the job should be run with.',
    value: (o) => `${Number(get(o, ['status', 'succeeded']) ?? 0)}/${Number(get(o, ['spec', 'completions']) ?? 1)}`,
  },
  {
    name: 'Duration',
    type: 'string',
    description: 'Time required to complete the job.',
    value: (o, now) => {
      const start = get(o, ['status', 'startTime']);
      if (typeof start !== 'string') return '';
      const end = get(o, ['status', 'completionTime']);
      return humanDuration((typeof end === 'string' ? Date.parse(end) : now) - Date.parse(start));
    },
  },
  ageCol,
];

const podColumns: PrintColumn[] = [
  nameCol,
  {
    name: 'Ready',
    type: 'string',
    description: 'The aggregate readiness state of this pod for accepting traffic.',
    value: (o) => {
      const containers = get(o, ['spec', 'containers']);
      const statuses = get(o, ['status', 'containerStatuses']);
      const total = Array.isArray(containers) ? containers.length : 0;
      const ready = Array.isArray(statuses) ? statuses.filter((s) => s?.ready).length : 0;
      return `${ready}/${total}`;
    },
  },
  {
    name: 'Status',
    type: 'string',
    description: 'The aggregate status of the containers in this pod.',
    value: (o) => (o.metadata.deletionTimestamp ? 'Terminating' : String(get(o, ['status', 'phase']) ?? 'Pending')),
  },
  { name: 'Restarts', type: 'string', description: 'The number of times the containers in this pod have been restarted.', value: () => '0' },
  ageCol,
];

const mapSize = (path: string[]) => (o: KubeObject) => {
  const v = get(o, path);
  return v && typeof v === 'object' ? Object.keys(v).length : 0;
};

const metaOnly = (label: string) => `"${label}" is not a known field selector: only "metadata.name", "metadata.namespace"`;
const coreError = (label: string) => `field label not supported: ${label}`;

interface Builtin {
  gv: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  fields?: string[];
  columns?: PrintColumn[];
  fieldLabels?: Record<string, (o: KubeObject) => string | undefined>;
  fieldLabelError?: (label: string) => string;
  defaultPropagation?: 'Orphan' | 'Background';
}

const str = (path: string[]) => (o: KubeObject) => {
  const v = get(o, path);
  return v === undefined || v === null ? '' : String(v);
};

const builtins: Builtin[] = [
  {
    gv: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    status: true,
    fields: ['spec', 'status'],
    columns: [nameCol, { name: 'Status', type: 'string', description: 'The status of the namespace', value: str(['status', 'phase']) }, ageCol],
    fieldLabels: { 'status.phase': str(['status', 'phase']) },
    fieldLabelError: coreError,
  },
  {
    gv: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    status: true,
    fields: ['spec', 'status'],
    columns: podColumns,
    fieldLabels: {
      'spec.nodeName': str(['spec', 'nodeName']),
      'spec.restartPolicy': str(['spec', 'restartPolicy']),
      'spec.schedulerName': str(['spec', 'schedulerName']),
      'spec.serviceAccountName': str(['spec', 'serviceAccountName']),
      'spec.hostNetwork': (o) => String(get(o, ['spec', 'hostNetwork']) === true),
      'status.phase': str(['status', 'phase']),
      'status.podIP': str(['status', 'podIP']),
      'status.nominatedNodeName': str(['status', 'nominatedNodeName']),
    },
    fieldLabelError: coreError,
  },
  {
    gv: 'v1',
    resource: 'secrets',
    kind: 'Secret',
    namespaced: true,
    fields: ['data', 'stringData', 'type', 'immutable'],
    columns: [nameCol, { name: 'Type', type: 'string', value: str(['type']) }, { name: 'Data', type: 'string', value: mapSize(['data']) }, ageCol],
    fieldLabels: { type: str(['type']) },
    fieldLabelError: coreError,
  },
  {
    gv: 'v1',
    resource: 'configmaps',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    fields: ['data', 'binaryData', 'immutable'],
    columns: [nameCol, { name: 'Data', type: 'string', value: (o) => mapSize(['data'])(o) + mapSize(['binaryData'])(o) }, ageCol],
  },
  {
    gv: 'v1',
    resource: 'events',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    // prettier-ignore
    fields: ['involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count', 'type', 'eventTime', 'series', 'action', 'related', 'reportingComponent', 'reportingInstance'],
    columns: [
      { name: 'Last Seen', type: 'string', value: (o, now) => { const t = get(o, ['lastTimestamp']) ?? get(o, ['eventTime']); return typeof t === 'string' ? humanDuration(now - Date.parse(t)) : '<unknown>'; } },
      { name: 'Type', type: 'string', value: str(['type']) },
      { name: 'Reason', type: 'string', value: str(['reason']) },
      { name: 'Object', type: 'string', value: (o) => `${String(get(o, ['involvedObject', 'kind']) ?? '').toLowerCase()}/${String(get(o, ['involvedObject', 'name']) ?? '')}` },
      { name: 'Message', type: 'string', value: str(['message']) },
      { ...nameCol, priority: 1 },
    ],
    fieldLabels: {
      'involvedObject.kind': str(['involvedObject', 'kind']),
      'involvedObject.namespace': str(['involvedObject', 'namespace']),
      'involvedObject.name': str(['involvedObject', 'name']),
      'involvedObject.uid': str(['involvedObject', 'uid']),
      'involvedObject.apiVersion': str(['involvedObject', 'apiVersion']),
      'involvedObject.resourceVersion': str(['involvedObject', 'resourceVersion']),
      'involvedObject.fieldPath': str(['involvedObject', 'fieldPath']),
      reason: str(['reason']),
      reportingComponent: str(['reportingComponent']),
      source: str(['source', 'component']),
      type: str(['type']),
    },
    fieldLabelError: coreError,
  },
  {
    gv: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    fields: ['secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
    columns: [nameCol, { name: 'Secrets', type: 'string', value: (o) => (Array.isArray(o['secrets']) ? o['secrets'].length : 0) }, ageCol],
  },
  {
    gv: 'batch/v1',
    resource: 'jobs',
    kind: 'Job',
    namespaced: true,
    categories: ['all'],
    status: true,
    fields: ['spec', 'status'],
    columns: jobColumns,
    fieldLabels: { 'status.successful': (o) => String(Number(get(o, ['status', 'succeeded']) ?? 0)) },
    fieldLabelError: (label) => `field label "${label}" not supported for batchv1.Job`,
    // kube: batch/v1 Job deletes orphan the Pods unless a propagationPolicy is given (back compat)
    defaultPropagation: 'Orphan',
  },
  {
    gv: 'batch/v1',
    resource: 'cronjobs',
    kind: 'CronJob',
    namespaced: true,
    shortNames: ['cj'],
    categories: ['all'],
    status: true,
    fields: ['spec', 'status'],
    columns: [
      nameCol,
      { name: 'Schedule', type: 'string', value: str(['spec', 'schedule']) },
      { name: 'Suspend', type: 'boolean', value: (o) => get(o, ['spec', 'suspend']) === true },
      { name: 'Active', type: 'integer', value: (o) => { const a = get(o, ['status', 'active']); return Array.isArray(a) ? a.length : 0; } },
      { name: 'Last Schedule', type: 'string', value: (o, now) => { const t = get(o, ['status', 'lastScheduleTime']); return typeof t === 'string' ? humanDuration(now - Date.parse(t)) : '<none>'; } },
      ageCol,
    ],
  },
  {
    gv: 'coordination.k8s.io/v1',
    resource: 'leases',
    kind: 'Lease',
    namespaced: true,
    fields: ['spec'],
    columns: [nameCol, { name: 'Holder', type: 'string', value: str(['spec', 'holderIdentity']) }, ageCol],
  },
  {
    gv: 'apiextensions.k8s.io/v1',
    resource: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
    fields: ['spec', 'status'],
    columns: [nameCol, { name: 'Created At', type: 'date', value: (o) => o.metadata.creationTimestamp }],
  },
  { gv: 'rbac.authorization.k8s.io/v1', resource: 'roles', kind: 'Role', namespaced: true, fields: ['rules'], columns: [nameCol, { name: 'Created At', type: 'string', value: (o) => o.metadata.creationTimestamp }] },
  { gv: 'rbac.authorization.k8s.io/v1', resource: 'clusterroles', kind: 'ClusterRole', namespaced: false, fields: ['rules', 'aggregationRule'], columns: [nameCol, { name: 'Created At', type: 'string', value: (o) => o.metadata.creationTimestamp }] },
  {
    gv: 'rbac.authorization.k8s.io/v1',
    resource: 'rolebindings',
    kind: 'RoleBinding',
    namespaced: true,
    fields: ['subjects', 'roleRef'],
    columns: [nameCol, { name: 'Role', type: 'string', value: (o) => `${String(get(o, ['roleRef', 'kind']))}/${String(get(o, ['roleRef', 'name']))}` }, ageCol],
  },
  {
    gv: 'rbac.authorization.k8s.io/v1',
    resource: 'clusterrolebindings',
    kind: 'ClusterRoleBinding',
    namespaced: false,
    fields: ['subjects', 'roleRef'],
    columns: [nameCol, { name: 'Role', type: 'string', value: (o) => `${String(get(o, ['roleRef', 'kind']))}/${String(get(o, ['roleRef', 'name']))}` }, ageCol],
  },
];

function builtinType(b: Builtin): ResourceType {
  const [group, version] = b.gv.includes('/') ? (b.gv.split('/') as [string, string]) : ['', b.gv];
  return {
    group,
    version,
    resource: b.resource,
    kind: b.kind,
    listKind: `${b.kind}List`,
    singular: b.kind.toLowerCase(),
    namespaced: b.namespaced,
    shortNames: b.shortNames ?? [],
    categories: b.categories ?? [],
    statusSubresource: b.status ?? false,
    // kube: CRDs refuse unconditional updates; the built-ins here all allow them
    unconditionalUpdate: b.resource !== 'customresourcedefinitions',
    fieldLabels: b.fieldLabels ?? {},
    fieldLabelError: b.fieldLabelError ?? metaOnly,
    columns: b.columns ?? [nameCol, ageCol],
    topLevelFields: b.fields ?? [],
    defaultPropagation: b.defaultPropagation ?? 'Background',
    storageKey: `${group}/${b.resource}`,
  };
}

/** The types one CRD serves (one per served version), or a list of problems. */
export function typesFromCrd(crd: KubeObject): ResourceType[] {
  const spec = (crd['spec'] ?? {}) as Record<string, any>;
  const names = (spec['names'] ?? {}) as Record<string, any>;
  const group = String(spec['group'] ?? '');
  const plural = String(names['plural'] ?? '');
  const kind = String(names['kind'] ?? '');
  const versions = Array.isArray(spec['versions']) ? spec['versions'] : [];
  return versions
    .filter((v: any) => v?.served !== false)
    .map((v: any): ResourceType => {
      const printer: PrintColumn[] = Array.isArray(v.additionalPrinterColumns)
        ? v.additionalPrinterColumns.map((c: any) => ({
            name: String(c.name),
            type: String(c.type ?? 'string'),
            ...(c.format ? { format: String(c.format) } : {}),
            ...(c.description ? { description: String(c.description) } : {}),
            ...(c.priority ? { priority: Number(c.priority) } : {}),
            value: (o: KubeObject, now: number) => {
              const val = get(o, String(c.jsonPath ?? '').replace(/^\./, '').split('.'));
              if (c.type === 'date' && typeof val === 'string') return humanDuration(now - Date.parse(val));
              return val ?? null;
            },
          }))
        : [];
      const hasAge = printer.some((c) => c.name === 'Age');
      const selectable: Record<string, (o: KubeObject) => string | undefined> = {};
      for (const f of Array.isArray(v.selectableFields) ? v.selectableFields : []) {
        const path = String(f?.jsonPath ?? '').replace(/^\./, '');
        if (path) selectable[path] = str(path.split('.'));
      }
      return {
        group,
        version: String(v.name),
        resource: plural,
        kind,
        listKind: String(names['listKind'] ?? `${kind}List`),
        singular: String(names['singular'] ?? kind.toLowerCase()),
        namespaced: spec['scope'] !== 'Cluster',
        shortNames: Array.isArray(names['shortNames']) ? names['shortNames'].map(String) : [],
        categories: Array.isArray(names['categories']) ? names['categories'].map(String) : [],
        statusSubresource: v.subresources?.status !== undefined,
        unconditionalUpdate: false,
        fieldLabels: selectable,
        fieldLabelError: coreError,
        columns: [nameCol, ...printer, ...(hasAge ? [] : [ageCol])],
        schema: (v.schema?.openAPIV3Schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }) as Record<string, unknown>,
        defaultPropagation: 'Background',
        storageKey: `${group}/${plural}`,
        crd: String(crd.metadata.name),
      };
    });
}

/** Lookup of served types by group/version/resource and by kind. */
export class Catalogue {
  private types: ResourceType[] = builtins.map(builtinType);

  all(): readonly ResourceType[] {
    return this.types;
  }

  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.resource === resource);
  }

  /** Any served version of group/resource (the RBAC and GC paths are version-agnostic). */
  findAnyVersion(group: string, resource: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.resource === resource);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
    return this.types.find((t) => t.group === group && t.version === version && t.kind === kind);
  }

  /** group → versions, in registration order (discovery). */
  groupVersions(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.types) {
      const vs = out.get(t.group) ?? [];
      if (!vs.includes(t.version)) vs.push(t.version);
      out.set(t.group, vs);
    }
    return out;
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.types.filter((t) => t.group === group && t.version === version);
  }

  setCrdTypes(crdName: string, types: ResourceType[]): void {
    this.types = this.types.filter((t) => t.crd !== crdName).concat(types);
  }

  removeCrd(crdName: string): void {
    this.types = this.types.filter((t) => t.crd !== crdName);
  }
}
