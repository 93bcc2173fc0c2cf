// Stage 3: with `rbac: true`, service account tokens are authorized like kube's RBAC
// authorizer against the stored Roles and bindings; denials carry kube's Forbidden message.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './index.ts';

type Json = any;
let server: TestApiServer;
let saToken: string;
const ns = 'cattle-fleet-system';
const sa = `system:serviceaccount:${ns}:fleet-cleanup`;

async function as(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Json }> {
  const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
const admin = (method: string, path: string, body?: unknown) => as(server.adminToken, method, path, body);

beforeAll(async () => {
  server = await startApiServer({ rbac: true });
  saToken = server.serviceAccountToken(ns, 'fleet-cleanup');
  for (const n of [ns, 'fleet-local']) await admin('POST', '/api/v1/namespaces', { metadata: { name: n } });
  await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'fleet-cleanup' } });
  await admin('POST', '/apis/batch/v1/namespaces/fleet-local/jobs', {
    metadata: { name: 'j' },
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'x' }] } } },
  });
  for (const name of ['fleet-cleanup-marker', 'other']) await admin('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } });
});
afterAll(() => server.close());

describe('RBAC', () => {
  it('denies a service account with no bindings, with kube\'s messages', async () => {
    const list = await as(saToken, 'GET', '/apis/batch/v1/jobs');
    expect(list.status).toBe(403);
    expect(list.body).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      message: `jobs.batch is forbidden: User "${sa}" cannot list resource "jobs" in API group "batch" at the cluster scope`,
      details: { group: 'batch', kind: 'jobs' },
    });
    const get = await as(saToken, 'GET', `/api/v1/namespaces/${ns}/configmaps/other`);
    expect(get.body.message).toBe(`configmaps "other" is forbidden: User "${sa}" cannot get resource "configmaps" in API group "" in the namespace "${ns}"`);
  });

  it('lets every authenticated user read discovery, /openapi and /version, and nobody unauthenticated', async () => {
    for (const p of ['/api', '/api/v1', '/apis', '/apis/batch/v1', '/openapi/v3', '/version']) expect((await as(saToken, 'GET', p)).status, p).toBe(200);
    expect((await as('nope', 'GET', '/version')).status).toBe(401);
  });

  it('grants cluster-wide through a ClusterRoleBinding to the ServiceAccount', async () => {
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name: 'fleet-cleanup' }, rules: [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'delete'] }] });
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'fleet-cleanup' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'fleet-cleanup' },
      subjects: [{ kind: 'ServiceAccount', name: 'fleet-cleanup', namespace: ns }],
    });
    const list = await as(saToken, 'GET', '/apis/batch/v1/jobs');
    expect(list.status).toBe(200);
    expect(list.body.items.map((j: Json) => j.metadata.name)).toEqual(['j']);
    // the rule names jobs, not jobs/status, and not get
    const status = await as(saToken, 'PATCH', '/apis/batch/v1/namespaces/fleet-local/jobs/j/status', { status: { succeeded: 1 } }, 'application/merge-patch+json');
    expect(status.status).toBe(403);
    expect(status.body.message).toBe(`jobs.batch "j" is forbidden: User "${sa}" cannot patch resource "jobs/status" in API group "batch" in the namespace "fleet-local"`);
    expect((await as(saToken, 'GET', '/apis/batch/v1/namespaces/fleet-local/jobs/j')).status).toBe(403);
    expect((await as(saToken, 'DELETE', '/apis/batch/v1/namespaces/fleet-local/jobs/j', { propagationPolicy: 'Background' })).status).toBe(200);
  });

  it('grants within one namespace through a RoleBinding, honouring resourceNames', async () => {
    await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      metadata: { name: 'marker' },
      rules: [
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'update'], resourceNames: ['fleet-cleanup-marker'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      ],
    });
    await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'marker' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'marker' },
      subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${ns}` }],
    });
    expect((await as(saToken, 'GET', `/api/v1/namespaces/${ns}/configmaps/fleet-cleanup-marker`)).status).toBe(200);
    expect((await as(saToken, 'GET', `/api/v1/namespaces/${ns}/configmaps/other`)).status).toBe(403);
    const list = await as(saToken, 'GET', `/api/v1/namespaces/${ns}/configmaps`);
    expect(list.body.message).toBe(`configmaps is forbidden: User "${sa}" cannot list resource "configmaps" in API group "" in the namespace "${ns}"`);
    expect((await as(saToken, 'POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'new' } })).status).toBe(201);
    // the RoleBinding does not reach other namespaces
    expect((await as(saToken, 'GET', '/api/v1/namespaces/fleet-local/configmaps/fleet-cleanup-marker')).status).toBe(403);
  });

  it('binds a namespaced RoleBinding to a ClusterRole only within that namespace; matches User subjects', async () => {
    const other = server.serviceAccountToken('fleet-local', 'reader');
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name: 'secret-reader' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }] });
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/fleet-local/rolebindings', {
      metadata: { name: 'secret-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'secret-reader' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'system:serviceaccount:fleet-local:reader' }],
    });
    expect((await as(other, 'GET', '/api/v1/namespaces/fleet-local/secrets')).status).toBe(200);
    expect((await as(other, 'GET', `/api/v1/namespaces/${ns}/secrets`)).status).toBe(403);
    expect((await as(other, 'GET', '/api/v1/secrets')).status).toBe(403);
  });
});

describe('without rbac', () => {
  it('allows every authenticated request', async () => {
    const open = await startApiServer();
    try {
      const token = open.serviceAccountToken('x', 'y');
      const res = await fetch(`${open.url}/api/v1/secrets`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
