// RBAC authorization like kube's RBAC authorizer, over the stored Roles, ClusterRoles,
// RoleBindings and ClusterRoleBindings. Discovery, /openapi and /version are open to every
// authenticated user (kube's system:discovery and system:public-info-viewer bindings).

import type { Attributes, Authorizer, Decision } from './authorize.ts';
import type { Catalogue } from './resources.ts';
import type { Store } from './store.ts';
import type { KubeObject, UserInfo } from './types.ts';

interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind?: string;
  name?: string;
  namespace?: string;
}

const DISCOVERY = /^\/(api|apis|openapi)(\/.*)?$|^\/(version|healthz|livez|readyz)\/?$/;

export function subjectMatches(s: Subject, user: UserInfo): boolean {
  switch (s.kind) {
    case 'ServiceAccount':
      return user.name === `system:serviceaccount:${s.namespace ?? ''}:${s.name ?? ''}`;
    case 'User':
      return user.name === s.name;
    case 'Group':
      return user.groups.includes(s.name ?? '');
    default:
      return false;
  }
}

const has = (list: string[] | undefined, v: string) => (list ?? []).some((x) => x === '*' || x === v);

export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.isResource) {
    return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  if (!has(rule.apiGroups, a.group)) return false;
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resOk = (rule.resources ?? []).some((r) => r === '*' || r === combined || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resOk) return false;
  if (!rule.resourceNames || rule.resourceNames.length === 0) return true;
  return a.name !== undefined && rule.resourceNames.includes(a.name);
}

export class RbacAuthorizer implements Authorizer {
  private readonly store: Store;
  private readonly catalogue: Catalogue;

  constructor(store: Store, catalogue: Catalogue) {
    this.store = store;
    this.catalogue = catalogue;
  }

  private objects(resource: string, namespace?: string): KubeObject[] {
    const type = this.catalogue.find('rbac.authorization.k8s.io', 'v1', resource);
    return type ? this.store.list(type, namespace) : [];
  }

  /** The rules a binding grants, or the lister's NotFound error text when its role is missing. */
  private rulesOf(roleRef: { kind?: string; name?: string } | undefined, namespace: string | undefined): PolicyRule[] | string {
    if (!roleRef?.name) return [];
    const resource = roleRef.kind === 'ClusterRole' ? 'clusterroles' : 'roles';
    if (resource === 'roles' && namespace === undefined) return [];
    const role = this.objects(resource, resource === 'roles' ? namespace : undefined).find((r) => r.metadata.name === roleRef.name);
    if (!role) return `${resource === 'roles' ? 'role' : 'clusterrole'}.rbac.authorization.k8s.io "${roleRef.name}" not found`;
    return (role['rules'] as PolicyRule[] | undefined) ?? [];
  }

  /**
   * plugin/pkg/auth/authorizer/rbac/rbac.go: cluster role bindings, then the namespace's role
   * bindings, of the user; allowed by the first matching rule. Otherwise the errors met on the way
   * (a binding to a missing role) become the reason, `RBAC: <aggregate>`.
   */
  authorize(a: Attributes): Decision {
    if (!a.isResource && a.verb === 'get' && DISCOVERY.test(a.path)) return { allowed: true };
    const bound = (b: KubeObject) => ((b['subjects'] as Subject[] | undefined) ?? []).some((s) => subjectMatches(s, a.user));
    const bindings = [
      ...this.objects('clusterrolebindings').filter(bound).map((b) => ({ b, ns: undefined })),
      ...(a.namespace !== undefined ? this.objects('rolebindings', a.namespace).filter(bound).map((b) => ({ b, ns: a.namespace })) : []),
    ];
    const errors: string[] = [];
    for (const { b, ns } of bindings) {
      const rules = this.rulesOf(b['roleRef'] as Subject, ns);
      if (typeof rules === 'string') {
        if (!errors.includes(rules)) errors.push(rules);
        continue;
      }
      if (rules.some((r) => ruleAllows(r, a))) return { allowed: true };
    }
    if (errors.length === 0) return { allowed: false };
    return { allowed: false, reason: `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}` };
  }
}
