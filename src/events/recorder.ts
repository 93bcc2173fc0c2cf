// Kubernetes Events about a run, recorded on the marker ConfigMap: what `kubectl get events` and
// `kubectl describe configmap` show an operator. Written the way client-go's event recorder
// writes a core/v1 Event (involvedObject with uid and resourceVersion, source, reporting
// controller and instance, first/last timestamp, count 1, name `<object>.<hex nanoseconds>`).
// Best effort: an Event that cannot be written is a warning, never a reason for the run to fail.
import type { CoreV1Event, V1ObjectReference } from '@kubernetes/client-node';
import type { KubeAccess } from '../kube/access.ts';
import type { KubeOp } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { messageOf, oneLine } from '../error-text.ts';

export type EventType = 'Normal' | 'Warning';

/** What phases see (RunContext.events): one call per thing an operator should see in `kubectl get events`. */
export interface RunEvents {
  record(type: EventType, reason: string, message: string): void;
}

export const COMPONENT = 'fleet-cleanup';
/** events.k8s.io/v1 refuses a longer note; core/v1 Events are read through it too. */
const MESSAGE_LIMIT = 1024;

/** A core/v1 Event about `ref`, as client-go's recorder builds one. Pure. */
export function makeEvent(ref: V1ObjectReference, type: EventType, reason: string, message: string, at: { date: Date; nanos: bigint }, instance: string): CoreV1Event {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${ref.name}.${at.nanos.toString(16)}`, namespace: ref.namespace! },
    involvedObject: ref,
    type,
    reason,
    message: oneLine(message, MESSAGE_LIMIT),
    source: { component: COMPONENT, host: instance },
    reportingComponent: COMPONENT,
    reportingInstance: instance,
    firstTimestamp: at.date,
    lastTimestamp: at.date,
    count: 1,
  };
}

export interface MarkerEventsOptions {
  access: KubeAccess;
  /** The marker ConfigMap the Events are about. */
  namespace: string;
  name: string;
  /** Who reports: the Pod name or host (source.host, reportingInstance). */
  instance: string;
  logger: Logger;
  /** A readable warning line when an Event cannot be written. */
  warn: (line: string) => void;
  now?: () => Date;
}

/** Events on the marker; `flush()` waits for the ones in flight (the run awaits it before it exits). */
export class MarkerEvents implements RunEvents {
  readonly #options: MarkerEventsOptions;
  readonly #pending: Array<Promise<void>> = [];
  #lastNanos = 0n;

  constructor(options: MarkerEventsOptions) {
    this.#options = options;
  }

  record(type: EventType, reason: string, message: string): void {
    this.#pending.push(this.#write(type, reason, message));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#pending);
  }

  async #write(type: EventType, reason: string, message: string): Promise<void> {
    const { access, namespace, name, logger } = this.#options;
    const date = (this.#options.now ?? (() => new Date()))();
    // Unix nanoseconds, strictly increasing within the run: two Events in one millisecond get two names.
    const nanos = BigInt(date.getTime()) * 1_000_000n;
    this.#lastNanos = nanos > this.#lastNanos ? nanos : this.#lastNanos + 1n;
    const at = { date, nanos: this.#lastNanos };
    try {
      const getOp: KubeOp = { verb: 'get', resource: 'configmaps', namespace, name };
      const marker = await access.call(getOp, (o) => access.core.readNamespacedConfigMap({ name, namespace }, o));
      const ref: V1ObjectReference = { apiVersion: 'v1', kind: 'ConfigMap', namespace, name, uid: marker.metadata!.uid!, resourceVersion: marker.metadata!.resourceVersion! };
      const body = makeEvent(ref, type, reason, message, at, this.#options.instance);
      const op: KubeOp = { verb: 'create', resource: 'events', namespace };
      await access.call(op, (o) => access.core.createNamespacedEvent({ namespace, body }, o));
      logger.debug({ event: { type, reason } }, `recorded event ${reason} on configmap ${namespace}/${name}`);
    } catch (err) {
      const line = `cannot record event ${reason} on configmap ${namespace}/${name}: ${messageOf(err)}`;
      logger.warn({ event: { type, reason } }, line);
      this.#options.warn(line);
    }
  }
}

/** The run's Event, from its final status: Normal CleanupCompleted, Warning CleanupPartial or CleanupFailed. */
export function runEvent(status: 'completed' | 'partial' | 'failed'): { type: EventType; reason: string } {
  if (status === 'completed') return { type: 'Normal', reason: 'CleanupCompleted' };
  return { type: 'Warning', reason: status === 'partial' ? 'CleanupPartial' : 'CleanupFailed' };
}
