// Shapes shared by the server's modules.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** One printed column of `kubectl get` (a meta.k8s.io Table column). */
export interface PrintColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  value: (obj: KubeObject, now: number) => unknown;
}

/** Everything the server knows about one served resource at one version. */
export interface ResourceType {
  group: string;
  version: string;
  resource: string; // plural
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** has a `/status` subresource (status is ignored on writes of the main resource) */
  statusSubresource: boolean;
  /** PUT without metadata.resourceVersion is allowed (kube: strategy AllowUnconditionalUpdate) */
  unconditionalUpdate: boolean;
  /** extra selectable fields beyond metadata.name/namespace: label → value extractor */
  fieldLabels: Record<string, (obj: KubeObject) => string | undefined>;
  /** the error text kube gives for an unsupported field label */
  fieldLabelError: (label: string) => string;
  columns: PrintColumn[];
  /** top-level fields besides apiVersion/kind/metadata; undefined = schema-driven (CRs) */
  topLevelFields?: string[];
  /** openAPIV3Schema of a custom resource version */
  schema?: Record<string, unknown>;
  /** kube's default propagation policy when a delete names none */
  defaultPropagation: 'Orphan' | 'Background';
  /** storage identity shared by all versions of one resource */
  storageKey: string;
  /** name of the CRD that defines it (custom resources only) */
  crd?: string;
}

export interface UserInfo {
  name: string;
  groups: string[];
}
