// What kube-apiserver adds to a batch/v1 Job on create: the v1 defaults
// (pkg/apis/batch/v1/defaults.go) and, unless spec.manualSelector is true, the generated
// selector and Pod template labels of the Job strategy (pkg/registry/batch/job/strategy.go,
// generateSelector): job-name and controller-uid labels, legacy and batch.kubernetes.io/
// spellings, and a selector on batch.kubernetes.io/controller-uid. kubectl logs job/NAME and
// the Job controller find the Job's Pods through that selector.
import { randomUUID } from 'node:crypto';
import type { KubeObject } from './types.ts';

type Obj = Record<string, any>;

/**
 * On create, and on every update (kube defaults each decoded object; an update that drops the
 * generated selector gets it again from the same name and uid, where kube would refuse the
 * change of an immutable field).
 */
export function defaultJob(job: KubeObject): void {
  job.metadata.uid ??= randomUUID(); // the selector names it; the store keeps a set uid
  const spec = ((job as Obj)['spec'] ??= {}) as Obj;
  if (spec['completions'] === undefined && spec['parallelism'] === undefined) {
    spec['completions'] = 1;
    spec['parallelism'] = 1;
  }
  spec['parallelism'] ??= 1;
  spec['backoffLimit'] ??= spec['backoffLimitPerIndex'] !== undefined ? 2147483647 : 6;
  spec['completionMode'] ??= 'NonIndexed';
  spec['suspend'] ??= false;
  spec['podReplacementPolicy'] ??= spec['podFailurePolicy'] ? 'Failed' : 'TerminatingOrFailed';
  const template = (spec['template'] ??= {}) as Obj;
  const podSpec = (template['spec'] ??= {}) as Obj;
  podSpec['terminationGracePeriodSeconds'] ??= 30;
  podSpec['dnsPolicy'] ??= 'ClusterFirst';
  podSpec['schedulerName'] ??= 'default-scheduler';
  podSpec['securityContext'] ??= {};
  if (spec['manualSelector'] === true) return;
  const meta = (template['metadata'] ??= {}) as Obj;
  const labels = (meta['labels'] ??= {}) as Record<string, string>;
  const name = String(job.metadata.name);
  const uid = String(job.metadata.uid);
  labels['job-name'] ??= name;
  labels['batch.kubernetes.io/job-name'] ??= name;
  labels['controller-uid'] ??= uid;
  labels['batch.kubernetes.io/controller-uid'] ??= uid;
  const selector = (spec['selector'] ??= {}) as Obj;
  const matchLabels = (selector['matchLabels'] ??= {}) as Record<string, string>;
  matchLabels['batch.kubernetes.io/controller-uid'] ??= uid;
}
