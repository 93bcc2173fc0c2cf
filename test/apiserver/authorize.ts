// The authorization step of the request pipeline. Without RBAC every authenticated request
// is allowed; with it, rbac.ts decides for everyone but system:masters.

import type { UserInfo } from './types.ts';

export interface Attributes {
  user: UserInfo;
  verb: string;
  isResource: boolean;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
}

export interface Decision {
  allowed: boolean;
  /** why rules could not be read (kube's RBAC authorizer: `RBAC: role... "x" not found`), appended to the 403 message */
  reason?: string;
}

export interface Authorizer {
  authorize(attrs: Attributes): Decision;
}

export const allowAll: Authorizer = { authorize: () => ({ allowed: true }) };

/** kube's Forbidden message for a denied request. */
export function forbiddenMessage(a: Attributes): string {
  const who = `User "${a.user.name}"`;
  if (!a.isResource) return `forbidden: ${who} cannot ${a.verb} path "${a.path}"`;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return `${who} cannot ${a.verb} resource "${res}" in API group "${a.group}" ${scope}`;
}
