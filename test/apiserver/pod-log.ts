// GET /api/v1/namespaces/NS/pods/NAME/log — what kube-apiserver answers by proxying to the
// kubelet (pkg/registry/core/pod/rest/log.go, pkg/registry/core/pod/strategy.go LogLocation,
// and the kubelet's container log checks): text/plain, the container's output, `container`,
// `follow`, `tailLines`, `limitBytes`. Output comes from a log source (the Job runner plays the
// kubelet); without one, or for a container that never ran, kube's refusals.
import type { ServerResponse } from 'node:http';
import { ApiError, badRequest, notFound } from './errors.ts';
import type { KubeObject } from './types.ts';

export interface ContainerLog {
  readonly ended: boolean;
  text(): Buffer;
  subscribe(onData: (chunk: Buffer) => void, onEnd: () => void): () => void;
}

export type PodLogSource = (namespace: string, pod: string, container: string) => ContainerLog | undefined;

const WAITING: Record<string, string> = { ErrImagePull: 'trying and failing to pull image', ImagePullBackOff: 'trying and failing to pull image' };

/** Writes the log answer, or throws the ApiError kube would answer. */
export function servePodLog(pod: KubeObject | undefined, name: string, query: URLSearchParams, source: PodLogSource | undefined, res: ServerResponse, onClose: (stop: () => void) => void): void {
  if (!pod) throw notFound('pods', '', name);
  const spec = (pod['spec'] ?? {}) as { containers?: Array<{ name: string }>; nodeName?: string };
  const containers = (spec.containers ?? []).map((c) => c.name);
  let container = query.get('container') ?? '';
  if (!container) {
    if (containers.length !== 1) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`);
    container = containers[0]!;
  }
  if (!containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
  if (!spec.nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
  if (query.get('previous') === 'true') throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
  const statuses = ((pod['status'] as { containerStatuses?: Array<{ name: string; state?: { waiting?: { reason?: string } } }> } | undefined)?.containerStatuses ?? []);
  const status = statuses.find((s) => s.name === container);
  const waiting = status?.state?.waiting;
  const log = source?.(String(pod.metadata.namespace), name, container);
  if (!status || waiting || !log) {
    const reason = waiting?.reason ?? 'ContainerCreating';
    throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${WAITING[reason] ?? reason}`);
  }
  const tail = query.get('tailLines');
  const limit = query.get('limitBytes');
  for (const [param, v] of [['tailLines', tail], ['limitBytes', limit]] as const) {
    if (v !== null && !/^\d+$/.test(v)) throw new ApiError(400, 'BadRequest', `${param}: Invalid value: "${v}": must be greater than or equal to 0`);
  }
  let budget = limit === null ? Infinity : Number(limit);
  res.writeHead(200, { 'content-type': 'text/plain' });
  const write = (chunk: Buffer): boolean => {
    if (budget <= 0) return false;
    const part = chunk.subarray(0, Math.min(chunk.length, budget));
    budget -= part.length;
    res.write(part);
    return budget > 0;
  };
  let first = log.text();
  if (tail !== null) {
    const lines = first.toString('utf8').split(/(?<=\n)/);
    first = Buffer.from(lines.slice(Math.max(0, lines.length - Number(tail))).join(''), 'utf8');
  }
  const more = write(first);
  if (query.get('follow') !== 'true' || log.ended || !more) {
    res.end();
    return;
  }
  const stop = log.subscribe(
    (chunk) => {
      if (!write(chunk)) finish();
    },
    () => finish(),
  );
  function finish(): void {
    stop();
    res.end();
  }
  onClose(finish);
  res.on('close', stop);
}
