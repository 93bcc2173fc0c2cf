// Bearer-token authentication: one admin token (system:masters) and per-ServiceAccount
// tokens minted by the test harness, standing in for kube's bound service account tokens.

import { randomBytes } from 'node:crypto';
import type { UserInfo } from './types.ts';

export const ADMIN_USER = 'test-admin';

export class Authenticator {
  readonly adminToken = `admin-${randomBytes(16).toString('hex')}`;
  private readonly tokens = new Map<string, UserInfo>([
    [this.adminToken, { name: ADMIN_USER, groups: ['system:masters', 'system:authenticated'] }],
  ]);

  serviceAccountToken(namespace: string, name: string): string {
    for (const [token, user] of this.tokens) if (user.name === `system:serviceaccount:${namespace}:${name}`) return token;
    const token = `sa-${namespace}-${name}-${randomBytes(12).toString('hex')}`;
    this.tokens.set(token, {
      name: `system:serviceaccount:${namespace}:${name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    });
    return token;
  }

  /** The user behind an `Authorization: Bearer` header, or undefined (→ 401). */
  authenticate(authorization: string | undefined): UserInfo | undefined {
    const m = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
    return m ? this.tokens.get(m[1]!) : undefined;
  }

  isAdmin(user: UserInfo): boolean {
    return user.groups.includes('system:masters');
  }
}
