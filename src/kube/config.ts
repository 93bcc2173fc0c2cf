import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** A kubeconfig that cannot be used: one line for the operator, no stack trace. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Kubeconfig from `--kubeconfig`, else `KUBECONFIG`, else the in-cluster service account,
 * else ~/.kube/config — the order kubectl users expect, with in-cluster first among the
 * fallbacks because the job normally runs as a Pod.
 */
export function loadKubeConfig(explicitPath: string | undefined, env: NodeJS.ProcessEnv = process.env, context?: string): KubeConfig {
  const kc = new KubeConfig();
  const fromEnv = env.KUBECONFIG?.split(':').filter(Boolean) ?? [];
  const candidates = explicitPath ? [explicitPath] : fromEnv;
  if (candidates.length > 0) {
    const path = candidates.find((p) => existsSync(p));
    if (!path) {
      const source = explicitPath ? '--kubeconfig' : 'KUBECONFIG';
      throw new KubeConfigError(`kubeconfig ${candidates.join(':')} (from ${source}): no such file`);
    }
    loadFile(kc, path);
  } else if (env.KUBERNETES_SERVICE_HOST && existsSync(join(SERVICE_ACCOUNT_DIR, 'token'))) {
    kc.loadFromCluster();
  } else if (existsSync(join(homedir(), '.kube', 'config'))) {
    loadFile(kc, join(homedir(), '.kube', 'config'));
  } else {
    throw new KubeConfigError('no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run inside a cluster');
  }
  if (context !== undefined) {
    // As `kubectl --context`: a context the kubeconfig does not have is an error, not a fallback.
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name).join(', ');
      throw new KubeConfigError(`kubeconfig: no context "${context}" (--context); it has: ${known || 'none'}`);
    }
    kc.setCurrentContext(context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new KubeConfigError(`kubeconfig: current context "${kc.getCurrentContext()}" names no cluster with a server address`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/\s]*@/i.test(cluster.server)) {
    // Refused rather than used: the URL would end up in error messages and logs.
    throw new KubeConfigError(`kubeconfig: the server address of cluster "${cluster.name}" carries credentials; put them in the user entry instead`);
  }
  return kc;
}

function loadFile(kc: KubeConfig, path: string): void {
  try {
    kc.loadFromFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new KubeConfigError(`kubeconfig ${path}: cannot be read: ${reason}`);
  }
}

/** The namespace the Pod runs in, as the service account mount tells it; undefined outside a cluster. */
export function podNamespace(): string | undefined {
  try {
    return readFileSync(join(SERVICE_ACCOUNT_DIR, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
