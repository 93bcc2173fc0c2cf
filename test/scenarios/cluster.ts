// The cluster a scenario runs against: the API test server or a real k3s. Scenarios see only
// this handle, so the same code proves the same behaviour on both.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { TestApiServer } from '../apiserver/index.ts';
import { runProcess, type CliRun } from '../cli/harness.ts';
import { kubeConfigFromYaml } from '../fixtures/kube.ts';

export interface ClusterHandle {
  /** For test names and messages. */
  name: string;
  /** Admin access, for seeding and checking. */
  kubeConfig: KubeConfig;
  /** The same admin access as a file, for the job's --kubeconfig. */
  kubeconfigPath: string;
  /** The real job (`node src/main.ts`) as a child process; nothing of the runner's environment leaks in. */
  runJob(args: string[]): Promise<CliRun>;
  /** A kubeconfig file that authenticates as `namespace/name` (the ServiceAccount must exist). */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /**
   * On a real cluster the Job controller would run seeded Jobs and rewrite their status:
   * seeds hand them to this other controller (`spec.managedBy`) instead.
   */
  jobManagedBy?: string;
}

/** A kubeconfig for the admin's current cluster that authenticates with `token`. */
function tokenKubeconfig(admin: KubeConfig, token: string): string {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'service-account', token }],
    contexts: [{ name: 'service-account', cluster: cluster.name, user: 'service-account' }],
    currentContext: 'service-account',
  });
  return kc.exportConfig();
}

/** Writes the kubeconfig for a ServiceAccount token into `dir`; returns its path. */
export async function writeTokenKubeconfig(admin: KubeConfig, token: string, dir: string, label: string): Promise<string> {
  const path = join(dir, `kubeconfig-${label}`);
  await writeFile(path, tokenKubeconfig(admin, token), { mode: 0o600 });
  return path;
}

export async function apiServerCluster(server: TestApiServer, dir: string): Promise<ClusterHandle> {
  const kubeconfigPath = join(dir, 'kubeconfig-admin');
  await server.writeKubeconfig(kubeconfigPath);
  const kubeConfig = kubeConfigFromYaml(server.kubeconfig());
  return {
    name: 'API test server',
    kubeConfig,
    kubeconfigPath,
    runJob: (args) => runProcess(args),
    serviceAccountKubeconfig: (namespace, name) => writeTokenKubeconfig(kubeConfig, server.serviceAccountToken(namespace, name), dir, `${namespace}-${name}`),
  };
}
