// The chart's ServiceAccount and RBAC objects, built from helm-hook/files/*.yaml and
// values.yaml exactly as the templates render them (for a release named `fleet`, the name
// Fleet's own chart would give a subchart), so tests apply the real rules without helm.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  RbacAuthorizationV1Api,
  CoreV1Api,
  loadYaml,
  type KubeConfig,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1PolicyRule,
  type V1Role,
  type V1RoleBinding,
  type V1ServiceAccount,
} from '@kubernetes/client-node';

export const CHART_DIR = fileURLToPath(new URL('../../helm-hook/', import.meta.url));
const file = (path: string) => readFile(`${CHART_DIR}${path}`, 'utf8');

export interface ChartValues {
  markerName: string;
  gitjobs: { enabled: boolean };
  oci: { enabled: boolean };
  [key: string]: unknown;
}

export const chartValues = async (): Promise<ChartValues> => loadYaml(await file('values.yaml')) as ChartValues;

export interface ChartRules {
  clusterRole: V1PolicyRule[];
  role: V1PolicyRule[];
  markerName: string;
}

/** The rules as the ClusterRole and the Role render them with the default values. */
export async function chartRules(): Promise<ChartRules> {
  const values = await chartValues();
  const gitjobs = loadYaml(await file('files/clusterrole-gitjobs-rules.yaml')) as V1PolicyRule[];
  const oci = loadYaml(await file('files/clusterrole-oci-rules.yaml')) as V1PolicyRule[];
  // role.yaml renders files/role-rules.yaml through tpl; the only expression is the marker name.
  const roleText = (await file('files/role-rules.yaml')).replaceAll('{{ .Values.markerName }}', values.markerName);
  if (roleText.includes('{{')) throw new Error('files/role-rules.yaml has a template expression this helper does not render');
  return {
    clusterRole: [...(values.gitjobs.enabled ? gitjobs : []), ...(values.oci.enabled ? oci : [])],
    role: loadYaml(roleText) as V1PolicyRule[],
    markerName: values.markerName,
  };
}

export interface ChartIdentity {
  /** The release namespace: ServiceAccount, Role, marker. */
  namespace: string;
  /** The full name: ServiceAccount, ClusterRole, Role and bindings share it. */
  name: string;
}

/** `fleet` + `fleet-cleanup` → `fleet-fleet-cleanup`, the subchart-of-Fleet install. */
export const FLEET_RELEASE: ChartIdentity = { namespace: 'cattle-fleet-system', name: 'fleet-fleet-cleanup' };

export interface ChartRbacObjects {
  serviceAccount: V1ServiceAccount;
  clusterRole: V1ClusterRole;
  clusterRoleBinding: V1ClusterRoleBinding;
  role: V1Role;
  roleBinding: V1RoleBinding;
}

export function chartRbacObjects(id: ChartIdentity, rules: { clusterRole: V1PolicyRule[]; role: V1PolicyRule[] }): ChartRbacObjects {
  const subjects = [{ kind: 'ServiceAccount', name: id.name, namespace: id.namespace }];
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: id.name, namespace: id.namespace } },
    clusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: id.name }, rules: rules.clusterRole },
    clusterRoleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: id.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: id.name }, subjects,
    },
    role: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: id.name, namespace: id.namespace }, rules: rules.role },
    roleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: id.name, namespace: id.namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: id.name }, subjects,
    },
  };
}

/** Creates the objects with an admin kubeconfig; the release namespace must exist. */
export async function applyChartRbac(admin: KubeConfig, objects: ChartRbacObjects): Promise<void> {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const namespace = objects.serviceAccount.metadata!.namespace!;
  await core.createNamespacedServiceAccount({ namespace, body: objects.serviceAccount });
  await rbac.createClusterRole({ body: objects.clusterRole });
  await rbac.createClusterRoleBinding({ body: objects.clusterRoleBinding });
  await rbac.createNamespacedRole({ namespace, body: objects.role });
  await rbac.createNamespacedRoleBinding({ namespace, body: objects.roleBinding });
}

/** `rules` less one verb of one resource (a rule left with no verb or resource is dropped). */
export function withoutVerb(rules: V1PolicyRule[], verb: string, group: string, resource: string): V1PolicyRule[] {
  const out: V1PolicyRule[] = [];
  for (const rule of rules) {
    const matches = (rule.apiGroups ?? []).includes(group) && (rule.resources ?? []).includes(resource) && rule.verbs.includes(verb);
    if (!matches) {
      out.push(rule);
      continue;
    }
    // Split the rule: the other resources keep the verb; this resource keeps the other verbs.
    const others = (rule.resources ?? []).filter((r) => r !== resource);
    if (others.length > 0) out.push({ ...rule, resources: others });
    const verbs = rule.verbs.filter((v) => v !== verb);
    if (verbs.length > 0) out.push({ ...rule, resources: [resource], verbs });
  }
  return out;
}

/** `jobs.batch`, `configmaps`: how kube's messages and the job's error lines name a resource. */
export const resourceLabel = (group: string, resource: string): string => (group === '' ? resource : `${resource}.${group}`);
