// The run's stop reaches the registry client: a SIGTERM (or a spent budget) while a registry
// hangs ends the request at once, not after its timeout and retries.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { RegistryClient, RegistryError } from '../../src/oci/registry/index.ts';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

it('aborts a read in flight to a hung registry as soon as the run stops', async () => {
  let arrived = 0;
  server = createServer(() => { arrived++; }); // accepts, never answers
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = new AbortController();
  const client = new RegistryClient(
    { reference: host, host, pathPrefix: '', basicHTTP: true, insecureSkipTLS: false },
    { retries: 3, timeoutMs: 20_000, signal: stop.signal },
  );
  const started = performance.now();
  const pending = client.resolve('fleet/s-abc').catch((e: unknown) => e);
  while (arrived === 0) await new Promise((r) => setTimeout(r, 5));
  stop.abort(new Error('received SIGTERM'));
  const err = (await pending) as RegistryError;
  const ms = performance.now() - started;
  await client.close();

  expect(err).toBeInstanceOf(RegistryError);
  expect(err.message).toMatch(/stopped \(received SIGTERM\)/);
  expect(arrived).toBe(1); // not retried
  expect(ms).toBeLessThan(2_000); // not the 20 s timeout
});
