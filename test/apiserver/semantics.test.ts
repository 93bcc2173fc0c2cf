// Stage 1: the kube-apiserver semantics the cleanup job and its tests rely on, checked with
// @kubernetes/client-node and plain fetch against a real listening server.

import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiException, ApiextensionsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, loadAllYaml } from '@kubernetes/client-node';
import { startApiServer, type TestApiServer } from './index.ts';

let server: TestApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let batch: BatchV1Api;
let nsCounter = 0;

type Json = any;

async function api(method: string, path: string, body?: unknown, contentType = 'application/json', token?: string): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token ?? server.adminToken}`, 'content-type': contentType, accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

async function newNamespace(): Promise<string> {
  const name = `ns-${String(++nsCounter).padStart(3, '0')}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

function job(name: string, extra: Json = {}): Json {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, ...extra.metadata },
    spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } }, ...extra.spec },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

async function createJob(ns: string, name: string, extra: Json = {}): Promise<Json> {
  return batch.createNamespacedJob({ namespace: ns, body: job(name, extra) });
}

async function createPod(ns: string, name: string, owner?: Json, finalizers?: string[]): Promise<Json> {
  return core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name,
        ...(finalizers ? { finalizers } : {}),
        ...(owner ? { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true }] } : {}),
      },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    },
  });
}

async function podNames(ns: string): Promise<string[]> {
  return (await core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata!.name!);
}

async function expectApiError(p: Promise<unknown>, code: number): Promise<Json> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiException);
    const err = e as ApiException<string>;
    expect(err.code).toBe(code);
    return typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
  }
  throw new Error(`expected HTTP ${code}, the call succeeded`);
}

beforeAll(async () => {
  server = await startApiServer();
  kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig());
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
});
afterAll(() => server.close());
beforeEach(() => server.faults.clear());

describe('authentication', () => {
  it('answers 401 Unauthorized without a valid bearer token, and records the request', async () => {
    server.requests.reset();
    const none = await fetch(`${server.url}/api/v1/namespaces`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    const wrong = await api('GET', '/api/v1/namespaces', undefined, 'application/json', 'not-a-token');
    expect(wrong.status).toBe(401);
    expect(server.requests.list({ verb: 'list', resource: 'namespaces' }).map((r) => [r.user, r.status])).toEqual([
      ['system:anonymous', 401],
      ['system:anonymous', 401],
    ]);
  });

  it('serves the same API over https with the kubeconfig (what kubectl needs)', async () => {
    expect(server.kubeconfig()).toContain('https://127.0.0.1:');
    const list = await core.listNamespace();
    expect(list.items.map((n) => n.metadata!.name)).toEqual(expect.arrayContaining(['default', 'kube-system', 'kube-public']));
  });
});

describe('create, get, update', () => {
  it('creates with generateName, and refuses duplicates, missing namespaces and bad names like kube', async () => {
    const ns = await newNamespace();
    const created = await batch.createNamespacedJob({ namespace: ns, body: { ...job(''), metadata: { generateName: 'repo-' } } });
    expect(created.metadata!.name).toMatch(/^repo-[a-z0-9]{5}$/);
    expect(created.metadata!.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata!.creationTimestamp).toBeInstanceOf(Date);
    expect(created.metadata!.generation).toBe(1);

    await createJob(ns, 'dup');
    const dup = await expectApiError(createJob(ns, 'dup'), 409);
    expect(dup).toMatchObject({ reason: 'AlreadyExists', message: 'jobs.batch "dup" already exists', details: { name: 'dup', group: 'batch', kind: 'jobs' } });

    const noNs = await expectApiError(createJob('nowhere', 'x'), 404);
    expect(noNs).toMatchObject({ reason: 'NotFound', message: 'namespaces "nowhere" not found' });

    const bad = await expectApiError(createJob(ns, 'Bad_Name'), 422);
    expect(bad.reason).toBe('Invalid');
    expect(bad.message).toMatch(/^Job\.batch "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);

    const noName = await api('POST', `/apis/batch/v1/namespaces/${ns}/jobs`, { ...job(''), metadata: {} });
    expect(noName.status).toBe(422);
    expect(noName.body.message).toBe('Job.batch "" is invalid: metadata.name: Required value: name or generateName is required');
  });

  it('gives the real NotFound message', async () => {
    const ns = await newNamespace();
    const body = await expectApiError(batch.readNamespacedJob({ name: 'x', namespace: ns }), 404);
    expect(body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', message: 'jobs.batch "x" not found', code: 404 });
    const pod = await api('GET', `/api/v1/namespaces/${ns}/pods/p`);
    expect(pod.body.message).toBe('pods "p" not found');
  });

  it('refuses a PUT with a stale resourceVersion (409 Conflict), allows it without one for built-ins', async () => {
    const ns = await newNamespace();
    const first = await createJob(ns, 'j');
    const newer = await batch.replaceNamespacedJob({ name: 'j', namespace: ns, body: { ...first, metadata: { ...first.metadata, labels: { a: '1' } } } });
    expect(Number(newer.metadata!.resourceVersion)).toBeGreaterThan(Number(first.metadata!.resourceVersion));
    const stale = await expectApiError(batch.replaceNamespacedJob({ name: 'j', namespace: ns, body: { ...first, metadata: { ...first.metadata, labels: { a: '2' } } } }), 409);
    expect(stale).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on jobs.batch "j": the object has been modified; please apply your changes to the latest version and try again',
    });
    const unconditional = await api('PUT', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { ...newer, metadata: { name: 'j', labels: { a: '3' } } });
    expect(unconditional.status).toBe(200);
    expect(unconditional.body.metadata.labels).toEqual({ a: '3' });
  });

  it('folds Secret stringData into base64 data', async () => {
    const ns = await newNamespace();
    const s = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's' }, type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1', stringData: { reference: 'reg:5000/x' } } });
    expect(s.data).toEqual({ reference: Buffer.from('reg:5000/x').toString('base64') });
    expect(s.stringData).toBeUndefined();
    expect(s.type).toBe('fleet.cattle.io/bundle-oci-storage/v1alpha1');
  });

  it('rejects unknown fields under fieldValidation=Strict and warns under the default', async () => {
    const ns = await newNamespace();
    const strict = await api('POST', `/api/v1/namespaces/${ns}/configmaps?fieldValidation=Strict`, { metadata: { name: 'c' }, dta: {} });
    expect(strict.status).toBe(400);
    expect(strict.body.message).toContain('strict decoding error: unknown field "dta"');
    const warn = await api('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'c' }, dta: {} });
    expect(warn.status).toBe(201);
    expect(warn.headers.get('warning')).toBe('299 - "unknown field \\"dta\\""');
  });
});

describe('status subresource and generation', () => {
  it('ignores status on create and on updates of the main resource; /status changes only status', async () => {
    const ns = await newNamespace();
    const created = await createJob(ns, 'j', { status: { succeeded: 5 } });
    expect(created.status?.succeeded).toBeUndefined();

    const put = await api('PUT', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { ...job('j'), metadata: { name: 'j', resourceVersion: created.metadata!.resourceVersion }, status: { succeeded: 3 } });
    expect(put.status).toBe(200);
    expect(put.body.status.succeeded).toBeUndefined();

    const merge = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { status: { succeeded: 2 } }, 'application/merge-patch+json');
    expect(merge.body.status.succeeded).toBeUndefined();

    const status = await api(
      'PATCH',
      `/apis/batch/v1/namespaces/${ns}/jobs/j/status`,
      { spec: { backoffLimit: 9 }, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } },
      'application/merge-patch+json',
    );
    expect(status.status).toBe(200);
    expect(status.body.status).toEqual({ succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] });
    expect(status.body.spec.backoffLimit).toBe(0);
    expect(status.body.metadata.generation).toBe(1);
  });

  it('increments generation on spec changes only', async () => {
    const ns = await newNamespace();
    await createJob(ns, 'j');
    const labels = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json');
    expect(labels.body.metadata.generation).toBe(1);
    const spec = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { spec: { backoffLimit: 2 } }, 'application/merge-patch+json');
    expect(spec.body.metadata.generation).toBe(2);
    const st = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j/status`, { status: { failed: 1 } }, 'application/merge-patch+json');
    expect(st.body.metadata.generation).toBe(2);
  });

  it('applies JSON patch and strategic merge patch, and refuses apply patches with 415', async () => {
    const ns = await newNamespace();
    await createJob(ns, 'j');
    await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j/status`, { status: { conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }] } }, 'application/merge-patch+json');
    const smp = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j/status`, { status: { conditions: [{ type: 'Complete', status: 'True' }] } }, 'application/strategic-merge-patch+json');
    expect(smp.body.status.conditions.map((c: Json) => c.type)).toEqual(['SuccessCriteriaMet', 'Complete']);
    const jp = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }], 'application/json-patch+json');
    expect(jp.body.metadata.labels).toEqual({ a: 'b' });
    const failedTest = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, [{ op: 'test', path: '/metadata/labels/a', value: 'z' }], 'application/json-patch+json');
    expect(failedTest.status).toBe(422);
    const apply = await api('PATCH', `/apis/batch/v1/namespaces/${ns}/jobs/j`, {}, 'application/apply-patch+yaml');
    expect(apply.status).toBe(415);
    expect(apply.body.reason).toBe('UnsupportedMediaType');
  });
});

describe('list selectors and paging', () => {
  let nsA: string;
  let nsB: string;
  beforeAll(async () => {
    nsA = await newNamespace();
    nsB = await newNamespace();
    for (const [ns, name, labels] of [
      [nsA, 'a1', { app: 'x', tier: 'web' }],
      [nsA, 'a2', { app: 'y' }],
      [nsB, 'b1', { app: 'x' }],
      [nsB, 'b2', {}],
    ] as const) {
      await createJob(ns, name, { metadata: { labels: { suite: 'sel', ...labels } } });
    }
    await api('PATCH', `/apis/batch/v1/namespaces/${nsB}/jobs/b1/status`, { status: { succeeded: 1 } }, 'application/merge-patch+json');
  });

  const names = async (q: string) => {
    const res = await api('GET', `/apis/batch/v1/jobs?${q}`);
    expect(res.status).toBe(200);
    return res.body.items.map((j: Json) => `${j.metadata.namespace}/${j.metadata.name}`);
  };
  const sel = (s: string) => `labelSelector=${encodeURIComponent(`suite=sel,${s}`)}`;

  it('filters by label selector: =, ==, !=, in, notin, exists, !exists', async () => {
    expect(await names(sel('app=x'))).toEqual([`${nsA}/a1`, `${nsB}/b1`]);
    expect(await names(sel('app==y'))).toEqual([`${nsA}/a2`]);
    expect(await names(sel('app!=x'))).toEqual([`${nsA}/a2`, `${nsB}/b2`]);
    expect(await names(sel('app in (x,y)'))).toEqual([`${nsA}/a1`, `${nsA}/a2`, `${nsB}/b1`]);
    expect(await names(sel('app notin (x)'))).toEqual([`${nsA}/a2`, `${nsB}/b2`]);
    expect(await names(sel('tier'))).toEqual([`${nsA}/a1`]);
    expect(await names(sel('!app'))).toEqual([`${nsB}/b2`]);
  });

  it('filters by field selector and refuses unsupported fields like kube', async () => {
    expect(await names(`${sel('app')}&fieldSelector=status.successful=1`)).toEqual([`${nsB}/b1`]);
    expect(await names(`${sel('app')}&fieldSelector=status.successful!=1`)).toEqual([`${nsA}/a1`, `${nsA}/a2`]);
    expect(await names(`${sel('app')}&fieldSelector=metadata.namespace==${nsA},metadata.name!=a1`)).toEqual([`${nsA}/a2`]);
    const bad = await api('GET', '/apis/batch/v1/jobs?fieldSelector=spec.foo=1');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ reason: 'BadRequest', message: 'field label "spec.foo" not supported for batchv1.Job' });
    const secretBad = await api('GET', `/api/v1/namespaces/${nsA}/secrets?fieldSelector=data=1`);
    expect(secretBad.body.message).toBe('field label not supported: data');
  });

  it('filters Secrets by type', async () => {
    await core.createNamespacedSecret({ namespace: nsA, body: { metadata: { name: 'oci' }, type: 'example.com/selector-test' } });
    await core.createNamespacedSecret({ namespace: nsA, body: { metadata: { name: 'plain' } } });
    const res = await core.listSecretForAllNamespaces({ fieldSelector: 'type=example.com/selector-test' });
    expect(res.items.map((s) => s.metadata!.name)).toEqual(['oci']);
  });

  it('pages across namespaces in key order from one snapshot', async () => {
    const seen: string[] = [];
    const first = await batch.listJobForAllNamespaces({ labelSelector: 'suite=sel', limit: 3 });
    seen.push(...first.items.map((j) => `${j.metadata!.namespace}/${j.metadata!.name}`));
    expect(first.metadata!._continue).toBeTruthy();
    // changes after the first page are not seen by the continued list (etcd snapshot semantics)
    await batch.deleteNamespacedJob({ name: 'b2', namespace: nsB, body: { propagationPolicy: 'Background' } });
    await createJob(nsB, 'b3', { metadata: { labels: { suite: 'sel' } } });
    const second = await batch.listJobForAllNamespaces({ labelSelector: 'suite=sel', limit: 3, _continue: first.metadata!._continue });
    seen.push(...second.items.map((j) => `${j.metadata!.namespace}/${j.metadata!.name}`));
    expect(second.metadata!._continue).toBeFalsy();
    expect(second.metadata!.resourceVersion).toBe(first.metadata!.resourceVersion);
    expect(seen).toEqual([`${nsA}/a1`, `${nsA}/a2`, `${nsB}/b1`, `${nsB}/b2`]);
  });

  it('reports remainingItemCount without selectors and a current list resourceVersion', async () => {
    const ns = await newNamespace();
    for (const n of ['c', 'a', 'b']) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: n } } });
    const page = await api('GET', `/api/v1/namespaces/${ns}/configmaps?limit=1`);
    expect(page.body.items.map((c: Json) => c.metadata.name)).toEqual(['a']);
    expect(page.body.metadata.remainingItemCount).toBe(2);
    const cm = await api('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'd' } });
    const list = await api('GET', `/api/v1/namespaces/${ns}/configmaps`);
    expect(list.body.metadata.resourceVersion).toBe(cm.body.metadata.resourceVersion);
  });

  it('answers 400 to a malformed continue token', async () => {
    const res = await api('GET', '/apis/batch/v1/jobs?limit=1&continue=garbage!!');
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
  });
});

describe('continue token expiry', () => {
  it('answers 410 Expired with a token that continues after the last returned key', async () => {
    const short = await startApiServer({ continueTtlMs: 20 });
    try {
      const h = { authorization: `Bearer ${short.adminToken}`, 'content-type': 'application/json' };
      await fetch(`${short.url}/api/v1/namespaces`, { method: 'POST', headers: h, body: JSON.stringify({ metadata: { name: 'p' } }) });
      for (const n of ['a', 'b', 'c']) {
        await fetch(`${short.url}/api/v1/namespaces/p/configmaps`, { method: 'POST', headers: h, body: JSON.stringify({ metadata: { name: n } }) });
      }
      const first: Json = await (await fetch(`${short.url}/api/v1/namespaces/p/configmaps?limit=1`, { headers: h })).json();
      expect(first.items.map((c: Json) => c.metadata.name)).toEqual(['a']);
      await sleep(60); // past the 20 ms token lifetime
      const expired = await fetch(`${short.url}/api/v1/namespaces/p/configmaps?limit=1&continue=${first.metadata.continue}`, { headers: h });
      expect(expired.status).toBe(410);
      const status: Json = await expired.json();
      expect(status).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
      expect(status.message).toMatch(/^The provided continue parameter is too old/);
      expect(status.metadata.continue).toBeTruthy();
      const rest: Json = await (await fetch(`${short.url}/api/v1/namespaces/p/configmaps?continue=${status.metadata.continue}`, { headers: h })).json();
      expect(rest.items.map((c: Json) => c.metadata.name)).toEqual(['b', 'c']);
    } finally {
      await short.close();
    }
  });
});

describe('delete', () => {
  it('checks uid and resourceVersion preconditions with the real Conflict messages', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    const uid = await expectApiError(batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { preconditions: { uid: 'other' } } }), 409);
    expect(uid).toMatchObject({
      reason: 'Conflict',
      message: `Operation cannot be fulfilled on Job.batch "j": the UID in the precondition (other) does not match the UID in record (${j.metadata!.uid}). The object might have been deleted and then recreated`,
      details: { name: 'j', group: 'batch', kind: 'Job' },
    });
    const rv = await expectApiError(batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { preconditions: { resourceVersion: '1' } } }), 409);
    expect(rv.message).toBe(
      `Operation cannot be fulfilled on Job.batch "j": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record (${j.metadata!.resourceVersion}). The object might have been modified`,
    );
    await batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { preconditions: { uid: j.metadata!.uid, resourceVersion: j.metadata!.resourceVersion }, propagationPolicy: 'Background' } });
    await expectApiError(batch.readNamespacedJob({ name: 'j', namespace: ns }), 404);
  });

  it('changes nothing under dryRun=All (in the DeleteOptions body: with a body the query is not read)', async () => {
    const ns = await newNamespace();
    await createJob(ns, 'j');
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { propagationPolicy: 'Background', dryRun: ['All'] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'j', group: 'batch', kind: 'jobs' } });
    expect((await batch.readNamespacedJob({ name: 'j', namespace: ns })).metadata!.deletionTimestamp).toBeUndefined();
  });

  it('Background: the Job goes at once and its Pods right after', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    await createPod(ns, 'j-1', j);
    await createPod(ns, 'other');
    await batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { propagationPolicy: 'Background' } });
    await expectApiError(batch.readNamespacedJob({ name: 'j', namespace: ns }), 404);
    expect(await podNames(ns)).toEqual(['other']);
  });

  it('Foreground: the Job stays (foregroundDeletion) until its blocking Pods are gone', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    await createPod(ns, 'j-1', j, ['example.com/hold']);
    await createPod(ns, 'j-2', j);
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { propagationPolicy: 'Foreground' });
    expect(res.status).toBe(200);
    const pending = await batch.readNamespacedJob({ name: 'j', namespace: ns });
    expect(pending.metadata!.deletionTimestamp).toBeInstanceOf(Date);
    expect(pending.metadata!.finalizers).toEqual(['foregroundDeletion']);
    expect(await podNames(ns)).toEqual(['j-1']);
    const held = await core.readNamespacedPod({ name: 'j-1', namespace: ns });
    expect(held.metadata!.deletionTimestamp).toBeInstanceOf(Date);
    await api('PATCH', `/api/v1/namespaces/${ns}/pods/j-1`, { metadata: { finalizers: null } }, 'application/merge-patch+json');
    expect(await podNames(ns)).toEqual([]);
    await expectApiError(batch.readNamespacedJob({ name: 'j', namespace: ns }), 404);
  });

  it('Orphan: the Pods stay, without the ownerReference', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    await createPod(ns, 'j-1', j);
    await batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { propagationPolicy: 'Orphan' } });
    const pod = await core.readNamespacedPod({ name: 'j-1', namespace: ns });
    expect(pod.metadata!.ownerReferences).toBeUndefined();
  });

  it('orphans a batch/v1 Job\'s Pods when no policy is given, with kube\'s warning', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    await createPod(ns, 'j-1', j);
    const res = await api('DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/j`);
    expect(res.status).toBe(200);
    expect(res.headers.get('warning')).toContain('child pods are preserved by default when jobs are deleted');
    expect(await podNames(ns)).toEqual(['j-1']);
  });

  it('keeps an object with finalizers (deletionTimestamp set) until they are removed', async () => {
    const ns = await newNamespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'c', finalizers: ['example.com/x'] } } });
    await core.deleteNamespacedConfigMap({ name: 'c', namespace: ns });
    const cm = await core.readNamespacedConfigMap({ name: 'c', namespace: ns });
    expect(cm.metadata!.deletionTimestamp).toBeInstanceOf(Date);
    const addMore = await api('PATCH', `/api/v1/namespaces/${ns}/configmaps/c`, { metadata: { finalizers: ['example.com/x', 'example.com/y'] } }, 'application/merge-patch+json');
    expect(addMore.status).toBe(422);
    await api('PATCH', `/api/v1/namespaces/${ns}/configmaps/c`, { metadata: { finalizers: [] } }, 'application/merge-patch+json');
    await expectApiError(core.readNamespacedConfigMap({ name: 'c', namespace: ns }), 404);
  });

  it('deletes the content of a deleted namespace', async () => {
    const ns = await newNamespace();
    await createJob(ns, 'j');
    await core.deleteNamespace({ name: ns });
    await expectApiError(core.readNamespace({ name: ns }), 404);
    expect((await batch.listJobForAllNamespaces({ fieldSelector: `metadata.namespace=${ns}` })).items).toEqual([]);
  });
});

describe('custom resources', () => {
  it('registers CRDs like a cluster: Established, discoverable, served; deleting one removes its objects', async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const crds = loadAllYaml(await readFile(new URL('../fixtures/fleet-crds.yaml', import.meta.url), 'utf8'));
    for (const crd of crds) await ext.createCustomResourceDefinition({ body: crd });
    const gitrepos = await ext.readCustomResourceDefinition({ name: 'gitrepos.fleet.cattle.io' });
    expect(gitrepos.status!.conditions!.filter((c) => c.status === 'True').map((c) => c.type)).toEqual(expect.arrayContaining(['Established', 'NamesAccepted']));
    const disco = await api('GET', '/apis/fleet.cattle.io/v1alpha1');
    expect(disco.body.resources.map((r: Json) => r.name)).toEqual(expect.arrayContaining(['gitrepos', 'gitrepos/status', 'bundles', 'bundledeployments']));

    const ns = await newNamespace();
    const repo: Json = await custom.createNamespacedCustomObject({
      group: 'fleet.cattle.io',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'gitrepos',
      body: { apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'GitRepo', metadata: { name: 'r' }, spec: { repo: 'https://x' }, status: { ignored: true } },
    });
    expect(repo.spec).toEqual({ repo: 'https://x' });
    expect(repo.status).toBeUndefined();
    // custom resources refuse unconditional updates
    const put = await api('PUT', `/apis/fleet.cattle.io/v1alpha1/namespaces/${ns}/gitrepos/r`, { ...repo, metadata: { name: 'r' } });
    expect(put.status).toBe(422);
    expect(put.body.message).toBe('gitrepos.fleet.cattle.io "r" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update');

    await ext.deleteCustomResourceDefinition({ name: 'gitrepos.fleet.cattle.io' });
    expect((await api('GET', `/apis/fleet.cattle.io/v1alpha1/namespaces/${ns}/gitrepos/r`)).status).toBe(404);
    const after = await api('GET', '/apis/fleet.cattle.io/v1alpha1');
    expect(after.body.resources.map((r: Json) => r.name)).not.toContain('gitrepos');
  });
});

describe('watch', () => {
  it('streams ADDED/MODIFIED/DELETED events after a resourceVersion, filtered by field selector', async () => {
    const ns = await newNamespace();
    const list = await api('GET', `/api/v1/namespaces/${ns}/configmaps`);
    const ac = new AbortController();
    const res = await fetch(`${server.url}/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${list.body.metadata.resourceVersion}&fieldSelector=metadata.name=w`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'other' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'w' } } });
    await api('PATCH', `/api/v1/namespaces/${ns}/configmaps/w`, { data: { a: 'b' } }, 'application/merge-patch+json');
    await core.deleteNamespacedConfigMap({ name: 'w', namespace: ns });
    const events: Json[] = [];
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body!) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      const lines = buf.split('\n');
      buf = lines.pop()!;
      events.push(...lines.filter(Boolean).map((l) => JSON.parse(l)));
      if (events.length >= 3) break;
    }
    ac.abort();
    expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'w'],
      ['MODIFIED', 'w'],
      ['DELETED', 'w'],
    ]);
  });
});

describe('test hooks', () => {
  it('fails, delays and counts matching requests; times limits a fault', async () => {
    const ns = await newNamespace();
    await createJob(ns, 'j');
    server.requests.reset();
    const fault = server.faults.add({ verb: 'get', resource: 'jobs', name: 'j', status: 500, times: 1 });
    const failed = await expectApiError(batch.readNamespacedJob({ name: 'j', namespace: ns }), 500);
    expect(failed).toMatchObject({ kind: 'Status', reason: 'InternalError', code: 500 });
    await batch.readNamespacedJob({ name: 'j', namespace: ns });
    expect(fault.hits).toBe(1);
    expect(server.requests.count({ verb: 'get', group: 'batch', resource: 'jobs', namespace: ns, name: 'j' })).toBe(2);
    expect(server.requests.list({ verb: 'get', resource: 'jobs' }).map((r) => r.status)).toEqual([500, 200]);
  });

  it('answers 429 with Retry-After, as API Priority and Fairness does: plain text, not a Status', async () => {
    server.faults.add({ verb: 'list', resource: 'jobs', status: 429, retryAfterSeconds: 3 });
    const res = await fetch(`${server.url}/apis/batch/v1/jobs`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('Too many requests, please try again later.\n');
  });

  it('drops the connection without an answer', async () => {
    server.faults.add({ verb: 'delete', resource: 'jobs', dropConnection: true });
    await expect(fetch(`${server.url}/apis/batch/v1/namespaces/default/jobs/x`, { method: 'DELETE', headers: { authorization: `Bearer ${server.adminToken}` } })).rejects.toThrow();
  });

  it('runs `before` so a test can change the world between a list and a delete; remove() ends a fault', async () => {
    const ns = await newNamespace();
    const j = await createJob(ns, 'j');
    const hook = server.faults.add({
      verb: 'delete',
      resource: 'jobs',
      before: async () => {
        await api('PUT', `/apis/batch/v1/namespaces/${ns}/jobs/j`, { ...j, metadata: { ...j.metadata, labels: { touched: 'yes' } } });
      },
    });
    const body = await expectApiError(batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { preconditions: { resourceVersion: j.metadata!.resourceVersion } } }), 409);
    expect(body.message).toContain('the ResourceVersion in the precondition');
    hook.remove();
    await batch.deleteNamespacedJob({ name: 'j', namespace: ns, body: { propagationPolicy: 'Background' } });
    expect(hook.hits).toBe(1);
  });

  it('delays a request by latencyMs and then handles it normally', async () => {
    server.faults.add({ verb: 'list', resource: 'namespaces', latencyMs: 30, times: 1 });
    const res = await api('GET', '/api/v1/namespaces');
    expect(res.status).toBe(200);
  });
});
