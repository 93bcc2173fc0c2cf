// The Job runner for the embedded cluster (tests and demo only): plays the Job controller and
// the kubelet of one node for the API test server. Jobs whose container image maps to a local
// build run as real processes (kubelet.ts); any other image gets a Pod stuck in ErrImagePull.
//
//   const { image } = await buildImage();
//   const runner = await startJobRunner(server, { images: { [CHART_IMAGE]: image } });
//   ... helm install / kubectl create job ...
//   await runner.close();
import type { TestApiServer } from '../apiserver/index.ts';
import { Api } from './api.ts';
import { JobController } from './controller.ts';
import { detectSandbox, Kubelet, type ContainerRecord, type LocalImage, type Sandbox } from './kubelet.ts';
import { Logs } from './logs.ts';

export type { ContainerRecord, LocalImage, Sandbox } from './kubelet.ts';
export { buildImage, CHART_IMAGE, checkoutImage, localImage } from './image.ts';

export const NODE_NAME = 'jobrunner-node';

export interface JobRunnerOptions {
  images: Record<string, LocalImage>;
  /** first backoff after a failed Pod; default 10 s as kube */
  backoffBaseMs?: number;
  /** how often the controller looks at Jobs and Pods; default 100 ms */
  syncIntervalMs?: number;
}

export interface JobRunner {
  /** how containers run: a mount namespace as root, or plain processes (with the reason) */
  readonly sandbox: Sandbox;
  /** every container started, in order: user, read-only root, memory limit, exit */
  readonly containers: readonly ContainerRecord[];
  /** a container's output so far (the kubelet's log file) */
  log(namespace: string, pod: string, container: string): string;
  close(): Promise<void>;
}

export async function startJobRunner(server: TestApiServer, opts: JobRunnerOptions): Promise<JobRunner> {
  const sandbox = detectSandbox();
  if (sandbox.kind === 'process') {
    if (process.env['CI'] === 'true') throw new Error(`CI=true and the job runner cannot run containers as a kubelet would: ${sandbox.reason}`);
    console.warn(`job runner: containers run as plain child processes (no mount namespace, read-only root, runAsUser or memory cgroup): ${sandbox.reason}`);
  }
  const api = new Api(server.url, server.adminToken);
  const logs = new Logs();
  const kubeconfig = server.kubeconfig();
  const caPem = Buffer.from(/certificate-authority-data: (\S+)/.exec(kubeconfig)![1]!, 'base64').toString('utf8');
  const { hostname, port } = new URL(server.url);
  const kubelet = new Kubelet({
    api,
    logs,
    images: opts.images,
    sandbox,
    nodeName: NODE_NAME,
    serviceHost: hostname,
    servicePort: port,
    caPem,
    serviceAccountToken: (ns, name) => server.serviceAccountToken(ns, name),
    kubeconfig: (token, namespace) => server.kubeconfig({ token, namespace }),
  });
  const controller = new JobController({ api, nodeName: NODE_NAME, backoffBaseMs: opts.backoffBaseMs ?? 10_000 });
  server.setPodLogSource(logs.source);

  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const pods = await api.items('/api/v1/pods');
        kubelet.sync(pods);
        await controller.syncAll(await api.items('/apis/batch/v1/jobs'), pods);
      } catch (e) {
        if (!stopped) console.error(`job runner: ${(e as Error).message}`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, opts.syncIntervalMs ?? 100).unref();
      });
    }
  })();
  return {
    sandbox,
    containers: kubelet.records,
    log: (ns, pod, container) => logs.source(ns, pod, container)?.text().toString('utf8') ?? '',
    async close() {
      stopped = true;
      wake?.();
      await loop;
      await kubelet.close();
      server.setPodLogSource(undefined);
    },
  };
}
