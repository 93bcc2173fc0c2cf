// The one delete path, against a scripted access layer: what it sends (preconditions, never
// without a uid and resourceVersion), how it reads each answer, and when it stops the phase.
import type { ConfigurationOptions, V1DeleteOptions } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeAccess } from '../../src/kube/access.ts';
import { ConditionalDeleter, judged, MAX_CONSECUTIVE_FAILURES, type Judged } from '../../src/kube/conditional-delete.ts';
import { KubeApiError, RequestAbandoned, type KubeOp } from '../../src/kube/errors.ts';
import { captureLogs } from '../fixtures/kube.ts';

type Attempt = 'ok' | KubeApiError;

/** An access layer whose `call` plays `script` per object: one entry per attempt, as its retries would. */
function scripted(script: (name: string) => Attempt[]) {
  const sent: Array<{ op: KubeOp; body: V1DeleteOptions }> = [];
  const access = {
    async call<T>(op: KubeOp, fn: (o: ConfigurationOptions) => Promise<T>, control: { signal?: AbortSignal } = {}): Promise<T> {
      const attempts = script(op.name ?? '');
      let mayHaveApplied = false;
      for (const [i, attempt] of attempts.entries()) {
        if (control.signal?.aborted && i === 0) throw new RequestAbandoned(op);
        await fn({});
        if (attempt === 'ok') return undefined as T;
        attempt.afterRetry = mayHaveApplied;
        mayHaveApplied ||= attempt.status === undefined || attempt.status === 500;
        if (i === attempts.length - 1) throw attempt;
      }
      throw new Error('empty script');
    },
  } as unknown as KubeAccess;
  return { access, sent };
}

const err = (status: number | undefined, reason: string) => new KubeApiError({ verb: 'delete', resource: 'secrets', namespace: 'ns', name: 'x' }, status, reason, 'detail');
const object = (name: string): Judged => judged({ namespace: 'ns', name, uid: `uid-${name}`, resourceVersion: '7' })!;

function deleter(script: (name: string) => Attempt[], extra: { budget?: AbortSignal; fence?: () => string | undefined; max?: number } = {}) {
  const { access, sent } = scripted(script);
  const logs = captureLogs();
  const d = new ConditionalDeleter({
    access, logger: logs.logger, budget: extra.budget ?? new AbortController().signal,
    ...(extra.fence ? { fence: extra.fence } : {}), ...(extra.max !== undefined ? { maxConsecutiveFailures: extra.max } : {}),
  });
  const del = (name: string) =>
    d.delete({ resource: 'secrets', noun: 'Secrets', object: object(name), options: { propagationPolicy: 'Background' }, send: async (body) => { sent.push({ op: { verb: 'delete', resource: 'secrets', name }, body }); } });
  return { d, del, sent, logs };
}

describe('judged', () => {
  it('is made only from metadata with namespace, name, uid and resourceVersion', () => {
    expect(judged({ namespace: 'a', name: 'b', uid: 'c', resourceVersion: 'd' })).toEqual({ namespace: 'a', name: 'b', uid: 'c', resourceVersion: 'd' });
    for (const missing of ['namespace', 'name', 'uid', 'resourceVersion'] as const) {
      const meta: Record<string, string> = { namespace: 'a', name: 'b', uid: 'c', resourceVersion: 'd' };
      expect(judged({ ...meta, [missing]: '' })).toBeUndefined();
      delete meta[missing];
      expect(judged(meta)).toBeUndefined();
    }
    expect(judged(undefined)).toBeUndefined();
  });
});

describe('ConditionalDeleter', () => {
  it('sends the preconditions of the object as judged, with the other delete options', async () => {
    const { del, sent } = deleter(() => ['ok']);
    expect(await del('a')).toEqual({ outcome: 'deleted' });
    expect(sent[0]!.body).toEqual({ propagationPolicy: 'Background', preconditions: { uid: 'uid-a', resourceVersion: '7' } });
  });

  it('a 404 after a retried attempt that may have been applied is our own delete', async () => {
    const { del } = deleter(() => [err(500, 'InternalError'), err(404, 'NotFound')]);
    expect(await del('a')).toEqual({ outcome: 'deleted', confirmedBy: 'NotFound after a retried delete' });
  });

  it('a 404 or 409 otherwise is a skip: gone or changed since judged', async () => {
    for (const answer of [err(404, 'NotFound'), err(409, 'Conflict')]) {
      const { del, d } = deleter(() => [answer]);
      expect(await del('a')).toEqual({ outcome: 'skipped', reason: 'gone or changed since judged' });
      expect(d.stop).toBeUndefined();
    }
    // A 409 after a retry is still a skip (the object changed, whoever changed it).
    const { del } = deleter(() => [err(500, 'InternalError'), err(409, 'Conflict')]);
    expect(await del('a')).toEqual({ outcome: 'skipped', reason: 'gone or changed since judged' });
  });

  it.each([
    [403, 'Forbidden', /^RBAC forbids deleting Secrets: delete secrets ns\/x: 403 Forbidden: detail$/],
    [401, 'Unauthorized', /^the API server refused the credentials: delete secrets ns\/x: 401 Unauthorized: detail$/],
  ])('a %i stops the phase as failed; nothing more is sent', async (status, reason, cause) => {
    const { del, d, sent } = deleter(() => [err(status, reason)]);
    expect(await del('a')).toEqual({ outcome: 'refused', message: expect.stringContaining(`${status} ${reason}`) });
    expect(d.stop).toEqual({ outcome: 'failed', cause: expect.stringMatching(cause) });
    expect(d.signal.aborted).toBe(true);
    expect(await del('b')).toEqual({ outcome: 'not-sent' });
    expect(sent.map((s) => s.op.name)).toEqual(['a']);
  });

  it('stops after N failures in a row, naming the first; a success or a skip in between resets the count', async () => {
    let n = 0;
    const { del, d } = deleter(() => [++n === 3 ? 'ok' : n === 5 ? err(409, 'Conflict') : err(503, `ServiceUnavailable${n}`)], { max: 3 });
    expect((await del('1')).outcome).toBe('failed');
    expect((await del('2')).outcome).toBe('failed');
    expect((await del('3')).outcome).toBe('deleted');
    expect((await del('4')).outcome).toBe('failed');
    expect((await del('5')).outcome).toBe('skipped');
    expect((await del('6')).outcome).toBe('failed');
    expect((await del('7')).outcome).toBe('failed');
    expect(d.stop).toBeUndefined();
    expect((await del('8')).outcome).toBe('failed');
    expect(d.stop).toEqual({ outcome: 'partial', cause: 'gave up after 3 deletes failed in a row; the first: delete secrets ns/x: 503 ServiceUnavailable1: detail' });
    expect(await del('9')).toEqual({ outcome: 'not-sent' });
    expect(MAX_CONSECUTIVE_FAILURES).toBe(10);
  });

  it('stops at ten failures in a row by default', async () => {
    const { del, d } = deleter(() => [err(500, 'InternalError')]);
    for (let i = 0; i < 9; i++) await del(String(i));
    expect(d.stop).toBeUndefined();
    await del('9');
    expect(d.stop?.cause).toMatch(/^gave up after 10 deletes failed in a row/);
  });

  it('sends nothing once the budget is spent, and says why', async () => {
    const budget = new AbortController();
    budget.abort(new Error('time budget 1m0s spent'));
    const { del, d, sent } = deleter(() => ['ok'], { budget: budget.signal });
    expect(await del('a')).toEqual({ outcome: 'not-sent' });
    expect(d.stop).toEqual({ outcome: 'partial', cause: 'time budget 1m0s spent' });
    expect(sent).toEqual([]);
  });

  it('a request abandoned in the queue is not sent', async () => {
    const { d, sent } = deleter(() => ['ok']);
    const abandoned = new ConditionalDeleter({
      access: { call: async (op: KubeOp) => { throw new RequestAbandoned(op); } } as unknown as KubeAccess,
      logger: captureLogs().logger, budget: new AbortController().signal,
    });
    expect(await abandoned.delete({ resource: 'secrets', noun: 'Secrets', object: object('a'), send: async () => undefined })).toEqual({ outcome: 'not-sent' });
    expect(abandoned.stop).toEqual({ outcome: 'partial', cause: 'time budget spent' });
    expect(d.stop).toBeUndefined();
    expect(sent).toEqual([]);
  });

  it('past the lock deadline: stops before sending, at the moment of sending', async () => {
    let fenced: string | undefined;
    const { del, d, sent } = deleter(() => ['ok'], { fence: () => fenced });
    expect((await del('a')).outcome).toBe('deleted');
    fenced = 'past the lock deadline';
    expect(await del('b')).toEqual({ outcome: 'not-sent' });
    expect(d.stop).toEqual({ outcome: 'partial', cause: 'past the lock deadline' });
    expect(sent.map((s) => s.op.name)).toEqual(['a']);
  });

  it('the fence is checked again when the request leaves the queue', async () => {
    let checks = 0;
    const { del, d, sent } = deleter(() => ['ok'], { fence: () => (++checks >= 2 ? 'past the lock deadline' : undefined) });
    expect(await del('a')).toEqual({ outcome: 'not-sent' });
    expect(d.stop?.cause).toBe('past the lock deadline');
    expect(sent).toEqual([]);
  });

  it('a retry of a request already sent is not fenced: it is seen through to a known outcome', async () => {
    let checks = 0;
    const { del, sent } = deleter(() => [err(500, 'InternalError'), 'ok'], { fence: () => (++checks >= 3 ? 'late' : undefined) });
    expect((await del('a')).outcome).toBe('deleted');
    expect(sent).toHaveLength(2);
  });
});
