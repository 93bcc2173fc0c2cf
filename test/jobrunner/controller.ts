// The Job controller's part (pkg/controller/job/job_controller.go, 1.32, the default feature
// gates), for NonIndexed Jobs: one Pod at a time up to spec.completions, the job-tracking
// finalizer on each Pod, finished Pods first recorded in status.uncountedTerminatedPods, then
// their finalizer removed, then counted; SuccessCriteriaMet before Complete and FailureTarget
// before Failed (BackoffLimitExceeded, DeadlineExceeded), completionTime on success, active /
// ready / terminating, exponential backoff between failed Pods; and the TTL-after-finished
// controller (pkg/controller/ttlafterfinished), which deletes a finished Job with Foreground
// propagation and a resourceVersion precondition.
import { jobPath, nowTime, podPath, type Api } from './api.ts';

type Obj = Record<string, any>;

export const TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';
const MAX_BACKOFF_MS = 6 * 60_000;

const cond = (job: Obj, type: string) => (job['status']?.conditions ?? []).find((c: Obj) => c['type'] === type && c['status'] === 'True') as Obj | undefined;
export const isFinished = (job: Obj) => Boolean(cond(job, 'Complete') ?? cond(job, 'Failed'));
const isTerminal = (pod: Obj) => ['Succeeded', 'Failed'].includes(pod['status']?.phase);
const isReady = (pod: Obj) => (pod['status']?.conditions ?? []).some((c: Obj) => c['type'] === 'Ready' && c['status'] === 'True');

function condition(type: string, reason: string, message: string): Obj {
  const t = nowTime();
  return { type, status: 'True', lastProbeTime: t, lastTransitionTime: t, reason, message };
}

/** Pods the Job controls: controller ownerReference to its uid, and matching its selector. */
export function podsOf(job: Obj, pods: Obj[]): Obj[] {
  const match = (job['spec']?.selector?.matchLabels ?? {}) as Record<string, string>;
  return pods.filter(
    (p) =>
      (p['metadata'].ownerReferences ?? []).some((o: Obj) => o['controller'] === true && o['uid'] === job['metadata'].uid) &&
      Object.entries(match).every(([k, v]) => p['metadata'].labels?.[k] === v),
  );
}

interface JobMemory {
  /** when the last counted failure happened (backoff starts there) */
  lastFailureMs?: number;
}

export interface ControllerOptions {
  api: Api;
  nodeName: string;
  /** the first backoff after a failed Pod (kube: 10 s, doubling, at most 6 min) */
  backoffBaseMs: number;
}

export class JobController {
  private readonly memory = new Map<string, JobMemory>();
  private readonly o: ControllerOptions;
  constructor(o: ControllerOptions) {
    this.o = o;
  }

  async syncAll(jobs: Obj[], pods: Obj[], now = Date.now()): Promise<void> {
    const uids = new Set(jobs.map((j) => String(j['metadata'].uid)));
    for (const job of jobs) await this.syncJob(job, podsOf(job, pods), now);
    // Pods whose Job is gone keep no finalizer (the controller's orphan cleanup)
    for (const pod of pods) {
      const owner = (pod['metadata'].ownerReferences ?? []).find((o: Obj) => o['controller'] === true && o['kind'] === 'Job');
      if (owner && !uids.has(owner['uid']) && pod['metadata'].finalizers?.includes(TRACKING_FINALIZER)) await this.removeFinalizer(pod);
    }
    for (const uid of this.memory.keys()) if (!uids.has(uid)) this.memory.delete(uid);
  }

  private async removeFinalizer(pod: Obj): Promise<void> {
    await this.o.api.must('PATCH', podPath(pod['metadata'].namespace, pod['metadata'].name), { metadata: { uid: pod['metadata'].uid, '$deleteFromPrimitiveList/finalizers': [TRACKING_FINALIZER] } }, 'application/strategic-merge-patch+json', [404]);
  }

  private async putStatus(job: Obj): Promise<Obj | undefined> {
    const r = await this.o.api.must('PUT', `${jobPath(job['metadata'].namespace, job['metadata'].name)}/status`, job, undefined, [404, 409]);
    return r.status === 200 ? (r.body as Obj) : undefined;
  }

  private async syncJob(job: Obj, pods: Obj[], now: number): Promise<void> {
    const uid = String(job['metadata'].uid);
    const spec = job['spec'] ?? {};
    if (isFinished(job)) return this.ttl(job, now);
    if (spec.suspend === true || job['metadata'].deletionTimestamp) return;
    const mem = this.memory.get(uid) ?? {};
    this.memory.set(uid, mem);
    const status = (job['status'] ??= {}) as Obj;
    const before = JSON.stringify(status);
    status.uncountedTerminatedPods ??= {};
    status.startTime ??= nowTime(now);
    const uncounted = status.uncountedTerminatedPods as { succeeded?: string[]; failed?: string[] };
    const tracked = pods.filter((p) => p['metadata'].finalizers?.includes(TRACKING_FINALIZER));
    const newlySucceeded = tracked.filter((p) => p['status']?.phase === 'Succeeded' && !uncounted.succeeded?.includes(p['metadata'].uid));
    const newlyFailed = tracked.filter((p) => (p['status']?.phase === 'Failed' || (p['metadata'].deletionTimestamp && !isTerminal(p))) && !uncounted.failed?.includes(p['metadata'].uid));
    let active = pods.filter((p) => !isTerminal(p) && !p['metadata'].deletionTimestamp);
    const succeeded = Number(status.succeeded ?? 0) + newlySucceeded.length + (uncounted.succeeded?.length ?? 0);
    const failed = Number(status.failed ?? 0) + newlyFailed.length + (uncounted.failed?.length ?? 0);
    if (newlyFailed.length > 0) mem.lastFailureMs = now;

    // the terminal condition, first as its interim form
    let interim: Obj | undefined = cond(job, 'SuccessCriteriaMet') ?? cond(job, 'FailureTarget');
    if (!interim) {
      if (failed > Number(spec.backoffLimit ?? 6)) interim = condition('FailureTarget', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      else if (spec.activeDeadlineSeconds !== undefined && now - Date.parse(status.startTime) >= Number(spec.activeDeadlineSeconds) * 1000) {
        interim = condition('FailureTarget', 'DeadlineExceeded', 'Job was active longer than specified deadline');
      } else if (succeeded >= Number(spec.completions ?? 1) && active.length === 0) {
        interim = condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods');
      }
    }
    const failing = interim?.['type'] === 'FailureTarget';
    if (failing) {
      // active Pods are deleted (the kubelet stops them) and count as failed
      for (const p of active) {
        await this.o.api.must('DELETE', podPath(p['metadata'].namespace, p['metadata'].name), {}, undefined, [404]);
        newlyFailed.push(p);
      }
      active = [];
    } else if (!interim && active.length === 0 && succeeded < Number(spec.completions ?? 1) && this.backoffOver(mem, failed, now)) {
      active = [await this.createPod(job)];
    }

    // 1. record finished Pods as uncounted (and the interim condition), 2. drop their
    //    finalizers, 3. count them and write the final condition
    status.active = active.length || undefined; // omitempty, as kube writes it
    status.ready = active.filter(isReady).length;
    status.terminating = pods.filter((p) => p['metadata'].deletionTimestamp && !isTerminal(p)).length;
    const finishing = [...newlySucceeded, ...newlyFailed];
    if (finishing.length > 0 || (interim && !cond(job, interim['type']))) {
      uncounted.succeeded = [...(uncounted.succeeded ?? []), ...newlySucceeded.map((p) => p['metadata'].uid)];
      uncounted.failed = [...(uncounted.failed ?? []), ...newlyFailed.map((p) => p['metadata'].uid)];
      if (interim && !cond(job, interim['type'])) status.conditions = [...(status.conditions ?? []), interim];
      const written = await this.putStatus(job);
      if (!written) return;
      job = written;
      for (const p of finishing) await this.removeFinalizer(p);
      const s = job['status'] as Obj;
      const u = s['uncountedTerminatedPods'] ?? {};
      s['succeeded'] = Number(s['succeeded'] ?? 0) + (u.succeeded?.length ?? 0) || undefined;
      s['failed'] = Number(s['failed'] ?? 0) + (u.failed?.length ?? 0) || undefined;
      s['uncountedTerminatedPods'] = {};
      if (interim) {
        const final = interim['type'] === 'SuccessCriteriaMet' ? condition('Complete', interim['reason'], interim['message']) : condition('Failed', interim['reason'], interim['message']);
        s['conditions'] = [...(s['conditions'] ?? []), final];
        if (final['type'] === 'Complete') s['completionTime'] = nowTime();
        delete s['active'];
        s['ready'] = 0;
      }
      await this.putStatus(job);
      return;
    }
    if (JSON.stringify(status) !== before) await this.putStatus(job);
  }

  private backoffOver(mem: JobMemory, failed: number, now: number): boolean {
    if (failed === 0 || mem.lastFailureMs === undefined) return true;
    const delay = Math.min(this.o.backoffBaseMs * 2 ** (failed - 1), MAX_BACKOFF_MS);
    return now - mem.lastFailureMs >= delay;
  }

  private async createPod(job: Obj): Promise<Obj> {
    const t = job['spec'].template ?? {};
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${job['metadata'].name}-`,
        labels: t.metadata?.labels ?? {},
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        finalizers: [TRACKING_FINALIZER],
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job['metadata'].name, uid: job['metadata'].uid, controller: true, blockOwnerDeletion: true }],
      },
      // the scheduler's part: bound to this node at once
      spec: { ...structuredClone(t.spec ?? {}), nodeName: this.o.nodeName },
    };
    return (await this.o.api.must('POST', `/api/v1/namespaces/${job['metadata'].namespace}/pods`, pod)).body as Obj;
  }

  private async ttl(job: Obj, now: number): Promise<void> {
    const ttl = job['spec']?.ttlSecondsAfterFinished;
    if (ttl === undefined || job['metadata'].deletionTimestamp) return;
    const finished = cond(job, 'Complete') ?? cond(job, 'Failed');
    const at = Date.parse(job['status']?.completionTime ?? finished?.['lastTransitionTime']);
    if (now < at + Number(ttl) * 1000) return;
    await this.o.api.must('DELETE', jobPath(job['metadata'].namespace, job['metadata'].name), { propagationPolicy: 'Foreground', preconditions: { resourceVersion: job['metadata'].resourceVersion } }, undefined, [404, 409]);
  }
}
