// Public API of the Kubernetes API test server (see README.md).

import { writeFile } from 'node:fs/promises';
import type { FaultHandle, FaultRule, RequestFilter, RequestRecord } from './faults.ts';
import { kubeconfigYaml } from './kubeconfig.ts';
import type { FlowControlOptions } from './flowcontrol.ts';
import type { PodLogSource } from './pod-log.ts';
import { ApiServer } from './server.ts';

import { ContractViolationError, type ContractViolation } from './contract.ts';

export type { FaultHandle, FaultRule, RequestFilter, RequestRecord } from './faults.ts';
export type { ContractViolation } from './contract.ts';
export { ContractViolationError, requestLine } from './contract.ts';
export { apfTooManyRequests, APF_TOO_MANY_REQUESTS } from './errors.ts';
export type { ContainerLog, PodLogSource } from './pod-log.ts';

export interface StartOptions {
  /** default 0 = a free port; always binds 127.0.0.1 */
  port?: number;
  /** lifetime of list continue tokens; default 300_000; expired → 410 Gone reason Expired */
  continueTtlMs?: number;
  /** enforce RBAC for non-admin tokens; default false = every authenticated request allowed */
  rbac?: boolean;
  /**
   * What `close()` does with requests kube-apiserver would refuse for their shape (contract.ts):
   * 'fail' (default) rejects naming each one, so the test file fails; 'record' only records
   * them (the standalone server, tests that send refused requests on purpose use `take()`).
   */
  contract?: 'fail' | 'record';
  /** APF-like capacity per user (see flowcontrol.ts): seats, then a bounded queue, then 429; default off. */
  flowControl?: FlowControlOptions;
}

export interface TestApiServer {
  readonly url: string;
  readonly adminToken: string;
  kubeconfig(opts?: { token?: string; namespace?: string }): string;
  writeKubeconfig(path: string, opts?: { token?: string; namespace?: string }): Promise<void>;
  serviceAccountToken(namespace: string, name: string): string;
  faults: { add(rule: FaultRule): FaultHandle; clear(): void };
  requests: { count(filter?: RequestFilter): number; list(filter?: RequestFilter): RequestRecord[]; reset(): void };
  /** Requests refused for their shape so far; `take()` returns and forgets them. */
  contract: { violations(): ContractViolation[]; take(): ContractViolation[] };
  /** Client connections accepted since the server started. */
  connections(): number;
  /** Ends every open watch, as an API server restart would. */
  closeWatches(): void;
  /** Where pods/log reads container output (the Job runner, playing the kubelet). */
  setPodLogSource(source: PodLogSource | undefined): void;
  /** Stops the server; rejects with ContractViolationError when violations are left (unless contract: 'record'). */
  close(): Promise<void>;
}

export async function startApiServer(opts: StartOptions = {}): Promise<TestApiServer> {
  const server = new ApiServer({ port: opts.port ?? 0, continueTtlMs: opts.continueTtlMs ?? 300_000, rbac: opts.rbac ?? false, ...(opts.flowControl ? { flowControl: opts.flowControl } : {}) });
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
    contract: { violations: () => server.contract.list(), take: () => server.contract.take() },
    close: async () => {
      await server.close();
      const left = server.contract.list();
      if ((opts.contract ?? 'fail') === 'fail' && left.length > 0) throw new ContractViolationError(left);
    },
    connections: () => server.connectionCount,
    closeWatches: () => server.closeWatches(),
    setPodLogSource: (source) => {
      server.podLogSource = source;
    },
  };
}
