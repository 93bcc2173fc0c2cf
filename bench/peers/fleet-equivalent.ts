// Fleet's own cleanup of GitRepo Jobs, as an algorithm to compare against (not Fleet's code):
// list every Job into memory in one request, then delete the finished GitRepo Jobs one at a
// time through a client-side limit of 20 QPS, burst 30 (controller-runtime's client-go
// defaults), over kept-alive connections as client-go has them.
// `node bench/peers/fleet-equivalent.ts <kubeconfig>`
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { KubeConfig, type V1Job } from '@kubernetes/client-node';
import { KubeAccess } from '../../src/kube/access.ts';
import { createLogger } from '../../src/log.ts';

const kc = new KubeConfig();
kc.loadFromString(readFileSync(process.argv[2]!, 'utf8'));
const access = new KubeAccess(kc, {
  concurrency: 1, initialConcurrency: 1, qps: 20, burst: 30, retries: 5, requestTimeoutMs: 600_000,
  logger: createLogger({ destination: new Writable({ write: (_c, _e, done) => done() }) }),
});
const all = await access.call({ verb: 'list', resource: 'jobs.batch' }, (o) => access.batch.listJobForAllNamespaces({}, o));
const finished = (job: V1Job) =>
  job.metadata?.ownerReferences?.some((r) => r.kind === 'GitRepo') === true && (job.status?.succeeded ?? 0) > 0;
let deleted = 0;
for (const job of all.items.filter(finished)) {
  const { name = '', namespace = '' } = job.metadata ?? {};
  try {
    await access.call({ verb: 'delete', resource: 'jobs.batch', namespace, name }, (o) =>
      access.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }, o));
    deleted++;
  } catch {
    // Fleet ignores errors here.
  }
}
console.log(JSON.stringify({ deleted }));
process.exit(0);
