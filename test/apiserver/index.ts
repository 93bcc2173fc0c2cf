// Public API of the Kubernetes API test server (see README.md).

import { writeFile } from 'node:fs/promises';
import type { FaultHandle, FaultRule, RequestFilter, RequestRecord } from './faults.ts';
import { kubeconfigYaml } from './kubeconfig.ts';
import { ApiServer } from './server.ts';

export type { FaultHandle, FaultRule, RequestFilter, RequestRecord } from './faults.ts';

export interface StartOptions {
  /** default 0 = a free port; always binds 127.0.0.1 */
  port?: number;
  /** lifetime of list continue tokens; default 300_000; expired → 410 Gone reason Expired */
  continueTtlMs?: number;
  /** enforce RBAC for non-admin tokens; default false = every authenticated request allowed */
  rbac?: boolean;
}

export interface TestApiServer {
  readonly url: string;
  readonly adminToken: string;
  kubeconfig(opts?: { token?: string; namespace?: string }): string;
  writeKubeconfig(path: string, opts?: { token?: string; namespace?: string }): Promise<void>;
  serviceAccountToken(namespace: string, name: string): string;
  faults: { add(rule: FaultRule): FaultHandle; clear(): void };
  requests: { count(filter?: RequestFilter): number; list(filter?: RequestFilter): RequestRecord[]; reset(): void };
  /** Ends every open watch, as an API server restart would. */
  closeWatches(): void;
  close(): Promise<void>;
}

export async function startApiServer(opts: StartOptions = {}): Promise<TestApiServer> {
  const server = new ApiServer({ port: opts.port ?? 0, continueTtlMs: opts.continueTtlMs ?? 300_000, rbac: opts.rbac ?? false });
  await server.listen();
  const kubeconfig = (o: { token?: string; namespace?: string } = {}) => kubeconfigYaml(server.httpsUrl, server.certificate.certPem, o.token ?? server.auth.adminToken, o.namespace);
  return {
    url: server.url,
    adminToken: server.auth.adminToken,
    kubeconfig,
    writeKubeconfig: (path, o) => writeFile(path, kubeconfig(o), { mode: 0o600 }),
    serviceAccountToken: (ns, name) => server.auth.serviceAccountToken(ns, name),
    faults: { add: (rule) => server.faults.add(rule), clear: () => server.faults.clear() },
    requests: {
      count: (f) => server.requests.count(f),
      list: (f) => server.requests.list(f),
      reset: () => server.requests.reset(),
    },
    closeWatches: () => server.closeWatches(),
    close: () => server.close(),
  };
}
