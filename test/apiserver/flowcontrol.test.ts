// The APF-like capacity model: seats per user, a bounded queue, then kube-apiserver's 429.
import { afterEach, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './index.ts';

let server: TestApiServer;
afterEach(async () => {
  await server?.close();
});

it('runs two requests of a user at once, queues one, and refuses the next with a text/plain 429 and Retry-After', async () => {
  server = await startApiServer({ flowControl: { seatsPerUser: 2, queueLength: 1 } });
  server.faults.add({ verb: 'get', resource: 'namespaces', latencyMs: 300 });
  const get = () => fetch(`${server.url}/api/v1/namespaces/default`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  const answers = [get(), get(), get()];
  await new Promise((r) => setTimeout(r, 100)); // the first three are in: two executing, one queued
  const refused = await get();
  expect(refused.status).toBe(429);
  expect(refused.headers.get('retry-after')).toBe('1');
  expect(refused.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(await refused.text()).toBe('Too many requests, please try again later.\n');
  expect((await Promise.all(answers)).map((r) => r.status)).toEqual([200, 200, 200]);
  // Seats are freed again: a later request is served.
  expect((await get()).status).toBe(200);
});
