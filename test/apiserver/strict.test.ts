// The API test server refuses what kube-apiserver 1.32 refuses, with kube's exact Status, and
// records each such request as a contract violation (contract.ts). Each expectation names the
// kube-apiserver source that defines it (see README.md's fidelity table).

import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContractViolationError, startApiServer, type TestApiServer } from './index.ts';

let server: TestApiServer;
let nsCounter = 0;
type Json = any;

async function api(method: string, path: string, body?: unknown, opts: { contentType?: string; token?: string } = {}): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${opts.token ?? server.adminToken}`, 'content-type': opts.contentType ?? 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Json;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

async function namespace(): Promise<string> {
  const name = `strict-${++nsCounter}`;
  expect((await api('POST', '/api/v1/namespaces', { metadata: { name } })).status).toBe(201);
  return name;
}

const jobBody = (name: string, extra: Json = {}) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name, ...extra },
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } } },
});

async function job(ns: string, name: string, extra: Json = {}): Promise<Json> {
  const res = await api('POST', `/apis/batch/v1/namespaces/${ns}/jobs`, jobBody(name, extra));
  expect(res.status).toBe(201);
  return res.body;
}

async function configMap(ns: string, name: string): Promise<Json> {
  const res = await api('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name }, data: { a: '1' } });
  expect(res.status).toBe(201);
  return res.body;
}

/** The requests recorded as violations since the last call, as request lines. */
const violations = () => server.contract.take().map((v) => v.request);

beforeAll(async () => {
  server = await startApiServer({ rbac: true });
});
afterEach(() => server.faults.clear());
afterAll(() => server.close());

describe('query parameters (apimachinery meta/v1/validation, endpoints/handlers)', () => {
  it('dryRun accepts only All: dryRun=false on PUT is 422 UpdateOptions, nothing is written, the request is a violation', async () => {
    const ns = await namespace();
    const cm = await configMap(ns, 'marker');
    const path = `/api/v1/namespaces/${ns}/configmaps/marker`;
    const res = await api('PUT', `${path}?dryRun=false`, { ...cm, data: { a: '2' } });
    expect(res.status).toBe(422);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'UpdateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"false"}: supported values: "All"',
      reason: 'Invalid',
      details: {
        group: 'meta.k8s.io',
        kind: 'UpdateOptions',
        causes: [{ reason: 'FieldValueNotSupported', message: 'Unsupported value: []string{"false"}: supported values: "All"', field: 'dryRun' }],
      },
      code: 422,
    });
    expect((await api('GET', path)).body.data).toEqual({ a: '1' });
    expect(violations()).toEqual([`PUT ${path}?dryRun=false`]);
  });

  it('refuses dryRun=false on create, patch and delete, each with its own options kind', async () => {
    const ns = await namespace();
    await configMap(ns, 'c');
    const base = `/api/v1/namespaces/${ns}/configmaps`;
    const create = await api('POST', `${base}?dryRun=foo`, { metadata: { name: 'd' } });
    expect([create.status, create.body.message]).toEqual([422, 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"foo"}: supported values: "All"']);
    const patch = await api('PATCH', `${base}/c?dryRun=false`, { data: { b: '2' } }, { contentType: 'application/merge-patch+json' });
    expect([patch.status, patch.body.details.kind]).toEqual([422, 'PatchOptions']);
    const del = await api('DELETE', `${base}/c?dryRun=false`);
    expect([del.status, del.body.message]).toEqual([422, 'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"false"}: supported values: "All"']);
    expect((await api('GET', `${base}/c`)).status).toBe(200);
    expect((await api('GET', `${base}/d`)).status).toBe(404);
    expect(violations()).toHaveLength(3);
  });

  it('fieldValidation takes "", Ignore, Warn or Strict; fieldManager must be printable and at most 128 bytes', async () => {
    const ns = await namespace();
    const base = `/api/v1/namespaces/${ns}/configmaps`;
    const fv = await api('POST', `${base}?fieldValidation=strict`, { metadata: { name: 'x' } });
    expect([fv.status, fv.body.message]).toEqual([422, 'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn"']);
    const ctl = await api('POST', `${base}?fieldManager=${encodeURIComponent('a\tb')}`, { metadata: { name: 'x' } });
    expect([ctl.status, ctl.body.message]).toEqual([422, 'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value: "a\\tb": invalid character U+0009 (at position 1)']);
    const long = await api('POST', `${base}?fieldManager=${'m'.repeat(129)}`, { metadata: { name: 'x' } });
    expect([long.status, long.body.message]).toEqual([422, 'CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long: must have at most 128 bytes']);
    expect((await api('POST', `${base}?fieldValidation=&fieldManager=fleet-cleanup`, { metadata: { name: 'ok' } })).status).toBe(201);
    expect(violations()).toHaveLength(3);
  });

  it('DeleteOptions: a policy with orphanDependents, an unknown policy, a non-integer grace period are refused; a negative one counts as 1 s', async () => {
    const ns = await namespace();
    await configMap(ns, 'c');
    const path = `/api/v1/namespaces/${ns}/configmaps/c`;
    const both = await api('DELETE', `${path}?propagationPolicy=Background&orphanDependents=false`);
    expect([both.status, both.body.message]).toEqual([422, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": orphanDependents and deletionPropagation cannot be both set']);
    const unknown = await api('DELETE', path, { propagationPolicy: 'Cascade' });
    expect([unknown.status, unknown.body.message]).toEqual([422, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Cascade": supported values: "Foreground", "Background", "Orphan", "nil"']);
    const grace = await api('DELETE', `${path}?gracePeriodSeconds=soon`);
    expect([grace.status, grace.body.reason, grace.body.message]).toEqual([400, 'BadRequest', 'strconv.ParseInt: parsing "soon": invalid syntax']);
    expect(violations()).toHaveLength(3);
    expect((await api('DELETE', `${path}?gracePeriodSeconds=-5`)).status).toBe(200);
    expect(violations()).toEqual([]);
  });

  it('a DeleteOptions body wins: the query is then ignored (delete.go decodes one or the other)', async () => {
    const ns = await namespace();
    await configMap(ns, 'c');
    const path = `/api/v1/namespaces/${ns}/configmaps/c`;
    const res = await api('DELETE', `${path}?dryRun=All`, { propagationPolicy: 'Background' });
    expect(res.status).toBe(200);
    expect((await api('GET', path)).status).toBe(404);
  });

  it('limit must be an integer; continue with an explicit resourceVersion is 400; resourceVersionMatch needs a resourceVersion', async () => {
    const ns = await namespace();
    for (const n of ['a', 'b', 'c']) await configMap(ns, n);
    const base = `/api/v1/namespaces/${ns}/configmaps`;
    const bad = await api('GET', `${base}?limit=ten`);
    expect([bad.status, bad.body.message]).toEqual([400, 'strconv.ParseInt: parsing "ten": invalid syntax']);
    const first = await api('GET', `${base}?limit=1`);
    const token = first.body.metadata.continue as string;
    const withRv = await api('GET', `${base}?limit=1&continue=${token}&resourceVersion=${first.body.metadata.resourceVersion}`);
    expect([withRv.status, withRv.body.reason, withRv.body.message]).toEqual([400, 'BadRequest', 'specifying resource version is not allowed when using continue']);
    expect((await api('GET', `${base}?limit=1&continue=${token}&resourceVersion=0`)).status).toBe(200);
    const match = await api('GET', `${base}?resourceVersionMatch=NotOlderThan`);
    expect([match.status, match.body.message]).toEqual([422, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided']);
    expect(violations()).toHaveLength(3);
  });
});

describe('the body against the URL (handlers/rest.go checkName, create.go)', () => {
  it('PUT: the body must carry the URL name and no other namespace', async () => {
    const ns = await namespace();
    const cm = await configMap(ns, 'c');
    const path = `/api/v1/namespaces/${ns}/configmaps/c`;
    const other = await api('PUT', path, { ...cm, metadata: { ...cm.metadata, name: 'd' } });
    expect([other.status, other.body.message]).toEqual([400, 'the name of the object (d) does not match the name on the URL (c)']);
    const none = await api('PUT', path, { ...cm, metadata: { resourceVersion: cm.metadata.resourceVersion } });
    expect([none.status, none.body.message]).toEqual([400, 'the name of the object () does not match the name on the URL (c)']);
    const elsewhere = await api('PUT', path, { ...cm, metadata: { ...cm.metadata, namespace: 'default' } });
    expect([elsewhere.status, elsewhere.body.message]).toEqual([400, `the namespace of the object (default) does not match the namespace on the URL (${ns})`]);
    const create = await api('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'e', namespace: 'default' } });
    expect([create.status, create.body.message]).toEqual([400, 'the namespace of the provided object does not match the namespace sent on the request']);
    expect(violations()).toHaveLength(4);
  });
});

describe('deletes (registry/generic/registry/store.go, registry/rest/delete.go)', () => {
  it('a failed uid precondition names the object by Kind: Operation cannot be fulfilled on Job.batch', async () => {
    const ns = await namespace();
    const j = await job(ns, 'j1');
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j1`, { propagationPolicy: 'Background', preconditions: { uid: 'other-uid' } });
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `Operation cannot be fulfilled on Job.batch "j1": the UID in the precondition (other-uid) does not match the UID in record (${j.metadata.uid}). The object might have been deleted and then recreated`,
      reason: 'Conflict',
      details: { name: 'j1', group: 'batch', kind: 'Job' },
      code: 409,
    });
    const rv = await api('DELETE', `/api/v1/namespaces/${ns}/secrets/none`, { preconditions: { resourceVersion: '1' } });
    expect(rv.status).toBe(404);
    const cm = await configMap(ns, 'c');
    const stale = await api('DELETE', `/api/v1/namespaces/${ns}/configmaps/c`, { preconditions: { resourceVersion: '1' } });
    expect([stale.body.message, stale.body.details]).toEqual([
      `Operation cannot be fulfilled on ConfigMap "c": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record (${cm.metadata.resourceVersion}). The object might have been modified`,
      { name: 'c', kind: 'ConfigMap' },
    ]);
  });

  it('a Job deleted without a policy answers 200 with the object, deletionTimestamp and the orphan finalizer; it goes later and its Pods stay', async () => {
    const ns = await namespace();
    const j = await job(ns, 'j');
    const pod = await api('POST', `/api/v1/namespaces/${ns}/pods`, {
      metadata: { name: 'p', ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: j.metadata.uid, controller: true }] },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    expect(pod.status).toBe(201);
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'Job', metadata: { name: 'j', finalizers: ['orphan'], deletionTimestamp: expect.any(String) } });
    expect(res.headers.get('warning')).toContain('child pods are preserved by default when jobs are deleted');
    for (let i = 0; i < 50 && (await api('GET', `/apis/batch/v1/namespaces/${ns}/jobs/j`)).status === 200; i++) await sleep(10);
    expect((await api('GET', `/apis/batch/v1/namespaces/${ns}/jobs/j`)).status).toBe(404);
    const kept = await api('GET', `/api/v1/namespaces/${ns}/pods/p`);
    expect([kept.status, kept.body.metadata.ownerReferences]).toEqual([200, undefined]);
  });

  it('dryRun=All answers the Status a real delete would, and deletes nothing', async () => {
    const ns = await namespace();
    const j = await job(ns, 'j');
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j?dryRun=All&propagationPolicy=Background`);
    expect(res.body).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'j', group: 'batch', kind: 'jobs', uid: j.metadata.uid } });
    expect((await api('GET', `/apis/batch/v1/namespaces/${ns}/jobs/j`)).status).toBe(200);
  });

  it('deletecollection applies the DeleteOptions (preconditions too) per item, warns once, and has no cluster-scope route', async () => {
    const ns = await namespace();
    await job(ns, 'a');
    await job(ns, 'b');
    const pre = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs`, { preconditions: { uid: 'nope' } });
    expect([pre.status, pre.body.reason, pre.body.details.kind]).toEqual([409, 'Conflict', 'Job']);
    const all = await api('DELETE', '/apis/batch/v1/jobs');
    expect([all.status, all.body.reason, all.body.details]).toEqual([405, 'MethodNotAllowed', { causes: [{ reason: 'UnexpectedServerResponse', message: '405: Method Not Allowed' }] }]);
    expect(violations()).toEqual(['DELETE /apis/batch/v1/jobs']);
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('warning')?.match(/child pods are preserved/g)).toHaveLength(1);
  });
});

describe('lists (apiserver/pkg/storage/etcd3/store.go GetList)', () => {
  it('a filtered page that fills up before the last key hands out a continue token; the next page may be empty', async () => {
    const ns = await namespace();
    await configMap(ns, 'a');
    for (const n of ['b', 'c', 'd']) {
      expect((await api('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: n, labels: { skip: 'yes' } } })).status).toBe(201);
    }
    const base = `/api/v1/namespaces/${ns}/configmaps?labelSelector=${encodeURIComponent('!skip')}&limit=1`;
    const first = await api('GET', base);
    expect(first.body.items.map((i: Json) => i.metadata.name)).toEqual(['a']);
    expect(first.body.metadata.continue).toEqual(expect.any(String));
    expect(first.body.metadata.remainingItemCount).toBeUndefined();
    const next = await api('GET', `${base}&continue=${first.body.metadata.continue}`);
    expect(next.body.items).toEqual([]);
    expect(next.body.metadata.continue).toBeUndefined();
  });
});

describe('API Priority and Fairness and RBAC', () => {
  it('an injected 429 is APF’s: text/plain "Too many requests, please try again later." with Retry-After', async () => {
    server.faults.add({ verb: 'list', resource: 'configmaps', status: 429, retryAfterSeconds: 3, times: 1 });
    const res = await api('GET', '/api/v1/configmaps');
    expect([res.status, res.headers.get('content-type'), res.headers.get('retry-after'), res.text]).toEqual([429, 'text/plain; charset=utf-8', '3', 'Too many requests, please try again later.\n']);
  });

  it('a binding to a missing Role appends the RBAC reason to the 403', async () => {
    const ns = await namespace();
    const binding = { metadata: { name: 'b' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'x' }, subjects: [{ kind: 'ServiceAccount', name: 'sa', namespace: ns }] };
    expect((await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, binding)).status).toBe(201);
    const res = await api('GET', `/api/v1/namespaces/${ns}/configmaps`, undefined, { token: server.serviceAccountToken(ns, 'sa') });
    expect([res.status, res.body.message]).toEqual([
      403,
      `configmaps is forbidden: User "system:serviceaccount:${ns}:sa" cannot list resource "configmaps" in API group "" in the namespace "${ns}": RBAC: role.rbac.authorization.k8s.io "x" not found`,
    ]);
  });
});

describe('the contract check', () => {
  it('close() fails naming each refused request, so a test file that sent one fails', async () => {
    const other = await startApiServer();
    await fetch(`${other.url}/api/v1/namespaces/default/configmaps?dryRun=false`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'x' } }),
    });
    const closed = other.close();
    await expect(closed).rejects.toBeInstanceOf(ContractViolationError);
    await expect(closed).rejects.toThrow('POST /api/v1/namespaces/default/configmaps?dryRun=false → 422 CreateOptions.meta.k8s.io "" is invalid');
  });
});
