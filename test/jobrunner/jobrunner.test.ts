// The Job runner as kubectl shows it: Jobs created with the pinned kubectl run as a kubelet
// would run them (in-cluster ServiceAccount mount, read-only root, runAsUser, memory cgroup),
// and their status is what kube's Job controller writes. A probe image (node -e SCRIPT) keeps
// each Job to a fraction of a second.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { describeWithToolchain } from '../toolchain/describe.ts';
import { startJobRunner, type JobRunner } from './index.ts';

const PROBE = 'local/probe:1';
const NS = 'jobs';

describeWithToolchain('the Job runner, seen through kubectl', ({ kubectl: KUBECTL }) => {
  let server: TestApiServer;
  let runner: JobRunner;
  let dir: string;
  const kubectl = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(KUBECTL, ['--kubeconfig', join(dir, 'kc'), '-n', NS, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  const ok = async (args: string[], input?: string) => {
    const r = await kubectl(args, input);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const job = (name: string, script: string, extra: { spec?: string; container?: string; image?: string } = {}) => `
apiVersion: batch/v1
kind: Job
metadata: {name: ${name}}
spec:
  backoffLimit: 0
${extra.spec ?? ''}
  template:
    spec:
      restartPolicy: Never
      serviceAccountName: prober
      securityContext: {runAsUser: 65532, runAsGroup: 65532}
      containers:
      - name: probe
        image: ${extra.image ?? PROBE}
        command: ["node", "-e", ${JSON.stringify(script)}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: GREETING, value: "hello $(POD_NAME)"}
${extra.container ?? ''}
`;
  const status = async (name: string) => JSON.parse(await ok(['get', 'job', name, '-o', 'json'])).status;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobrunner-test-'));
    server = await startApiServer();
    await server.writeKubeconfig(join(dir, 'kc'));
    // `node` inside the probe resolves through the image PATH; give it this machine's Node 24
    runner = await startJobRunner(server, {
      images: { [PROBE]: { entrypoint: [process.execPath], workingDir: '/', user: 0, group: 0 } },
      backoffBaseMs: 200,
    });
    await ok(['create', 'namespace', NS]);
  });
  afterAll(async () => {
    await runner?.close();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const probe = `
const fs = require('node:fs');
const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
let write; try { fs.writeFileSync('/probe-' + process.pid, 'x'); write = 'allowed'; } catch (e) { write = e.code; }
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(), greeting: process.env.GREETING,
  host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, kubeconfig: process.env.KUBECONFIG ?? null,
  namespace: fs.readFileSync(sa + '/namespace', 'utf8'), token: fs.readFileSync(sa + '/token', 'utf8').length > 0,
  ca: fs.readFileSync(sa + '/ca.crt', 'utf8').startsWith('-----BEGIN CERTIFICATE-----'),
  rootWrite: write,
  memoryLimit: fs.readFileSync('/sys/fs/cgroup/memory/' + fs.readFileSync('/proc/self/cgroup', 'utf8').match(/:memory:\\/(.*)/)[1] + '/memory.limit_in_bytes', 'utf8').trim(),
}));`;

  it('runs a Job as a kubelet would and completes it as the Job controller does', async () => {
    const manifest = job('probe', probe.replace(/\n/g, ' '), {
      container: '        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}\n        resources: {limits: {memory: 128Mi}}',
    }).replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`);
    await ok(['create', '-f', '-'], manifest);
    expect((await kubectl(['wait', '--for=condition=complete', 'job/probe', '--timeout=30s'])).stdout).toBe('job.batch/probe condition met\n');
    const s = await status('probe');
    expect(s.conditions.map((c: { type: string; reason: string }) => `${c.type}/${c.reason}`)).toEqual(['SuccessCriteriaMet/CompletionsReached', 'Complete/CompletionsReached']);
    expect(s).toMatchObject({ succeeded: 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} });
    expect(s.completionTime).toMatch(/Z$/);
    expect(s.active).toBeUndefined();
    const j = JSON.parse(await ok(['get', 'job', 'probe', '-o', 'json']));
    const uid = j.metadata.uid;
    expect(j.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': uid } });
    expect(j.spec.template.metadata.labels).toEqual({ 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': 'probe', 'controller-uid': uid, 'job-name': 'probe' });
    const pod = JSON.parse(await ok(['get', 'pods', '-l', 'job-name=probe', '-o', 'json'])).items[0];
    expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: 'probe', uid, controller: true, blockOwnerDeletion: true }]);
    expect(pod.metadata.finalizers ?? []).toEqual([]);
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    const logs = await ok(['logs', 'job/probe']);
    const seen = JSON.parse(logs.trim());
    expect(seen).toMatchObject({ greeting: `hello ${pod.metadata.name}`, namespace: NS, token: true, ca: true, kubeconfig: null, host: '127.0.0.1', port: new URL(server.url).port });
    if (runner.sandbox.kind === 'namespace') {
      expect(seen).toMatchObject({ uid: 65532, gid: 65532, rootWrite: 'EROFS', memoryLimit: String(128 * 2 ** 20) });
    }
  });

  it('serves pods/log with tailLines and refuses a container that never started', async () => {
    await ok(['create', '-f', '-'], job('lines', 'for (let i = 1; i <= 5; i++) console.log("line " + i)').replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await ok(['wait', '--for=condition=complete', 'job/lines', '--timeout=30s']);
    expect(await ok(['logs', 'job/lines', '--tail=2'])).toBe('line 4\nline 5\n');
    await ok(['create', '-f', '-'], job('unpullable', 'void 0', { image: 'docker.io/library/busybox:1' }));
    let pod: any;
    await expect.poll(async () => (pod = JSON.parse(await ok(['get', 'pods', '-l', 'job-name=unpullable', '-o', 'json'])).items[0])?.status?.containerStatuses?.[0]?.state?.waiting?.reason, { timeout: 10_000 }).toBe('ErrImagePull');
    expect(pod.status.phase).toBe('Pending');
    const r = await kubectl(['logs', 'job/unpullable']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`container "probe" in pod "${pod.metadata.name}" is waiting to start: trying and failing to pull image`);
  });

  it('follows a running container’s log until it ends (kubectl logs -f)', async () => {
    const slow = 'console.log("first"); setTimeout(() => console.log("second"), 3000)';
    await ok(['create', '-f', '-'], job('talker', slow).replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await expect.poll(async () => (await ok(['get', 'pods', '-l', 'job-name=talker', '-o', 'jsonpath={.items[0].status.phase}'])), { timeout: 15_000 }).toBe('Running');
    expect(await ok(['logs', '-f', 'job/talker'])).toBe('first\nsecond\n');
  });

  it('retries up to backoffLimit, then fails the Job with BackoffLimitExceeded', async () => {
    await ok(['create', '-f', '-'], job('flaky', 'console.error("boom"); process.exit(3)', { spec: '  activeDeadlineSeconds: 60' }).replace('backoffLimit: 0', 'backoffLimit: 1').replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await ok(['wait', '--for=condition=failed', 'job/flaky', '--timeout=30s']);
    const s = await status('flaky');
    expect(s.conditions.map((c: { type: string; reason: string }) => `${c.type}/${c.reason}`)).toEqual(['FailureTarget/BackoffLimitExceeded', 'Failed/BackoffLimitExceeded']);
    expect(s.conditions[1].message).toBe('Job has reached the specified backoff limit');
    expect(s).toMatchObject({ failed: 2, uncountedTerminatedPods: {} });
    expect(s.completionTime).toBeUndefined();
    const pods = JSON.parse(await ok(['get', 'pods', '-l', 'job-name=flaky', '-o', 'json'])).items;
    expect(pods.map((p: any) => p.status.containerStatuses[0].state.terminated.exitCode)).toEqual([3, 3]);
  });

  it('fails a Job past activeDeadlineSeconds, counted from its startTime as the Job controller counts it', async () => {
    const stubborn = 'process.on("SIGTERM", () => console.log("got SIGTERM")); console.log("started"); setInterval(() => {}, 1000)';
    await ok(['create', '-f', '-'], job('slow', stubborn, { spec: '  activeDeadlineSeconds: 1' }).replace('restartPolicy: Never', 'restartPolicy: Never\n      terminationGracePeriodSeconds: 1').replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await ok(['wait', '--for=condition=failed', 'job/slow', '--timeout=30s']);
    const s = await status('slow');
    expect(s.conditions.map((c: { type: string; reason: string }) => `${c.type}/${c.reason}`)).toEqual(['FailureTarget/DeadlineExceeded', 'Failed/DeadlineExceeded']);
    expect(s.conditions[1].message).toBe('Job was active longer than specified deadline');
    // startTime has whole seconds (metav1.Time), so the deadline may pass less than 1 s after the create.
    expect(Date.parse(s.conditions[1].lastTransitionTime)).toBeGreaterThanOrEqual(Date.parse(s.startTime) + 1000);
    expect(s.failed).toBe(1);
  });

  it.runIf(process.getuid?.() === 0)('enforces the memory limit with a cgroup: the container ends OOMKilled', async () => {
    const hog = 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))';
    await ok(['create', '-f', '-'], job('hog', hog, { container: '        resources: {limits: {memory: 64Mi}}' }).replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await ok(['wait', '--for=condition=failed', 'job/hog', '--timeout=30s']);
    const pod = JSON.parse(await ok(['get', 'pods', '-l', 'job-name=hog', '-o', 'json'])).items[0];
    expect(pod.status.containerStatuses[0].state.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
  });

  it('deletes a finished Job after ttlSecondsAfterFinished', async () => {
    await ok(['create', '-f', '-'], job('brief', 'void 0', { spec: '  ttlSecondsAfterFinished: 0' }).replace('command: ["node",', `command: [${JSON.stringify(process.execPath)},`));
    await expect.poll(async () => (await kubectl(['get', 'job', 'brief'])).stderr, { timeout: 15_000 }).toContain('jobs.batch "brief" not found');
    expect(await ok(['get', 'pods', '-l', 'job-name=brief', '-o', 'name'])).toBe('');
  });
}, { timeout: 120_000 });
