// The kubelet's part: runs the container of a Pod bound to this node when its image maps to a
// local build, the way a kubelet would: env with fieldRefs resolved, the ServiceAccount volume
// at /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT, a read-only
// root, runAsUser/runAsGroup, the memory limit as a cgroup v1 memory cgroup (an OOM kill is
// `OOMKilled`), SIGTERM then SIGKILL after the grace period when the Pod goes. The mounts and
// the user switch happen in sandbox.sh inside a private mount namespace (root only); without
// root the container is a plain child process given a kubeconfig instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nowTime, podPath, type Api } from './api.ts';
import type { Logs } from './logs.ts';

/** What an image name stands for on this machine. */
export interface LocalImage {
  /** ENTRYPOINT, e.g. [process.execPath, '/repo/dist/main.js'] */
  entrypoint: string[];
  /** WORKDIR */
  workingDir: string;
  /** USER (the image's numeric user and group) */
  user: number;
  group: number;
  /** ENV */
  env?: Record<string, string>;
}

export type Sandbox = { kind: 'namespace' } | { kind: 'process'; reason: string };

/** What the kubelet did for one container: the evidence a test or the demo shows. */
export interface ContainerRecord {
  namespace: string;
  pod: string;
  container: string;
  image: string;
  sandbox: Sandbox['kind'];
  uid: number;
  gid: number;
  readOnlyRoot: boolean;
  /** memory.limit_in_bytes as read back from the container's cgroup */
  memoryLimitBytes?: number;
  serviceAccount: string;
  exitCode?: number;
  reason?: string;
}

const SANDBOX_SH = fileURLToPath(new URL('./sandbox.sh', import.meta.url));
const MEMORY_CGROUP = '/sys/fs/cgroup/memory';
export const CGROUP_PARENT = join(MEMORY_CGROUP, 'fleet-cleanup-jobrunner');
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How containers can run here: in a mount namespace as root, or (saying why not) as plain processes. */
export function detectSandbox(): Sandbox {
  const why = (() => {
    if (process.getuid?.() !== 0) return 'not running as root (mount namespaces, cgroups and runAsUser need root)';
    for (const tool of ['unshare', 'setpriv']) if (spawnSync(tool, ['--version']).status !== 0) return `${tool} (util-linux) is not installed`;
    try {
      accessSync(MEMORY_CGROUP, constants.W_OK);
    } catch {
      return `${MEMORY_CGROUP} (cgroup v1 memory controller) is not writable`;
    }
    return undefined;
  })();
  return why ? { kind: 'process', reason: why } : { kind: 'namespace' };
}

/** "256Mi", "1G", "500000" → bytes (resource.Quantity, the forms pods use). */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q).trim());
  if (!m) throw new Error(`unsupported memory quantity ${q}`);
  const mult: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Math.ceil(Number(m[1]) * (m[2] ? mult[m[2]]! : 1));
}

type Obj = Record<string, any>;

/** $(VAR) expansion of command, args and env values (kube's expansion.MappingFuncFor). */
function expand(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => (name === undefined ? '$' : (vars[name] ?? all)));
}

function fieldRef(pod: Obj, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return String(pod['metadata']?.[m[1]!]?.[m[2]!] ?? '');
  const known: Record<string, () => unknown> = {
    'metadata.name': () => pod['metadata'].name,
    'metadata.namespace': () => pod['metadata'].namespace,
    'metadata.uid': () => pod['metadata'].uid,
    'spec.nodeName': () => pod['spec'].nodeName,
    'spec.serviceAccountName': () => pod['spec'].serviceAccountName,
    'status.hostIP': () => '127.0.0.1',
    'status.podIP': () => '127.0.0.1',
  };
  const get = known[path];
  if (!get) throw new Error(`unsupported fieldRef ${path}`);
  return String(get() ?? '');
}

interface Running {
  child?: ChildProcess;
  graceSeconds: number;
  killTimer?: NodeJS.Timeout;
  terminating: boolean;
}

export interface KubeletOptions {
  api: Api;
  logs: Logs;
  images: Record<string, LocalImage>;
  sandbox: Sandbox;
  nodeName: string;
  /** the API server as Pods reach it (KUBERNETES_SERVICE_HOST/PORT) */
  serviceHost: string;
  servicePort: string;
  caPem: string;
  serviceAccountToken(namespace: string, name: string): string;
  /** a kubeconfig for a token (the plain-process fallback) */
  kubeconfig(token: string, namespace: string): string;
}

export class Kubelet {
  private readonly pods = new Map<string, Running>();
  readonly records: ContainerRecord[] = [];
  private readonly o: KubeletOptions;
  constructor(o: KubeletOptions) {
    this.o = o;
  }

  /** Starts containers of new Pods on this node; stops those whose Pod is going or gone. */
  sync(pods: Obj[]): void {
    const seen = new Set<string>();
    for (const pod of pods) {
      if (pod['spec']?.nodeName !== this.o.nodeName) continue;
      const uid = String(pod['metadata'].uid);
      seen.add(uid);
      const running = this.pods.get(uid);
      if (!running) {
        if (pod['metadata'].deletionTimestamp || ['Succeeded', 'Failed'].includes(pod['status']?.phase)) continue;
        const r: Running = { terminating: false, graceSeconds: Number(pod['spec'].terminationGracePeriodSeconds ?? 30) };
        this.pods.set(uid, r);
        void this.run(pod, r).catch((e: unknown) => console.error(`job runner: pod ${pod['metadata'].namespace}/${pod['metadata'].name}: ${(e as Error).message}`));
      } else if (pod['metadata'].deletionTimestamp) {
        this.stop(running, Number(pod['metadata'].deletionGracePeriodSeconds ?? running.graceSeconds));
      }
    }
    for (const [uid, r] of this.pods) if (!seen.has(uid)) this.stop(r, r.graceSeconds);
  }

  /** SIGTERM, then SIGKILL after the grace period (the kubelet's killContainer). */
  private stop(r: Running, graceSeconds: number): void {
    if (r.terminating) return;
    r.terminating = true;
    if (!r.child || r.child.exitCode !== null || r.child.signalCode !== null) return;
    r.child.kill('SIGTERM');
    r.killTimer = setTimeout(() => r.child?.kill('SIGKILL'), graceSeconds * 1000);
  }

  async close(): Promise<void> {
    const exits = [...this.pods.values()].map((r) => {
      if (!r.child || r.child.exitCode !== null || r.child.signalCode !== null) return Promise.resolve();
      const done = new Promise<void>((resolve) => r.child!.once('exit', () => resolve()));
      r.child.kill('SIGKILL');
      return done;
    });
    await Promise.all(exits);
    for (const r of this.pods.values()) clearTimeout(r.killTimer);
  }

  private async status(pod: Obj, status: Obj): Promise<void> {
    const r = await this.o.api.request('PATCH', `${podPath(pod['metadata'].namespace, pod['metadata'].name)}/status`, { status }, 'application/merge-patch+json');
    if (r.status >= 300 && r.status !== 404) throw new Error(`pod status: ${r.status} ${r.body?.message}`);
  }

  private waiting(pod: Obj, c: Obj, reason: string, message: string): Promise<void> {
    return this.status(pod, {
      phase: 'Pending',
      conditions: conditions(pod, false),
      hostIP: '127.0.0.1',
      startTime: pod['status']?.startTime ?? nowTime(),
      containerStatuses: [{ name: c['name'], image: c['image'], imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason, ...(message ? { message } : {}) } } }],
    });
  }

  private async run(pod: Obj, r: Running): Promise<void> {
    const meta = pod['metadata'];
    const spec = pod['spec'];
    const c = spec.containers[0] as Obj;
    const image = this.o.images[c['image']];
    if (!image) {
      await this.waiting(pod, c, 'ErrImagePull', `failed to pull and unpack image "${c['image']}": the job runner runs only ${Object.keys(this.o.images).join(', ') || 'no images'}`);
      return;
    }
    const sc = { ...(spec.securityContext ?? {}), ...(c['securityContext'] ?? {}) } as Obj;
    const uid = Number(sc['runAsUser'] ?? image.user);
    const gid = Number(sc['runAsGroup'] ?? image.group);
    if (sc['runAsNonRoot'] === true && uid === 0) {
      await this.waiting(pod, c, 'CreateContainerConfigError', 'container has runAsNonRoot and image will run as root');
      return;
    }
    // environment: the image's, then the service variables, then the container's own, in order
    const env: Record<string, string> = {
      PATH: IMAGE_PATH,
      HOSTNAME: meta.name,
      HOME: '/',
      ...image.env,
      KUBERNETES_SERVICE_HOST: this.o.serviceHost,
      KUBERNETES_SERVICE_PORT: this.o.servicePort,
      KUBERNETES_SERVICE_PORT_HTTPS: this.o.servicePort,
      KUBERNETES_PORT: `tcp://${this.o.serviceHost}:${this.o.servicePort}`,
    };
    try {
      for (const e of (c['env'] ?? []) as Obj[]) {
        if (e['valueFrom']?.fieldRef) env[e['name']] = fieldRef(pod, e['valueFrom'].fieldRef.fieldPath);
        else if (e['valueFrom']) throw new Error(`unsupported valueFrom in env ${e['name']}`);
        else env[e['name']] = expand(String(e['value'] ?? ''), env);
      }
    } catch (e) {
      await this.waiting(pod, c, 'CreateContainerConfigError', (e as Error).message);
      return;
    }
    const argv = [...((c['command'] as string[] | undefined) ?? image.entrypoint), ...((c['args'] as string[] | undefined) ?? [])].map((a) => expand(a, env));
    const log = this.o.logs.open(meta.namespace, meta.name, c['name']);
    await this.waiting(pod, c, 'ContainerCreating', '');

    // the ServiceAccount volume's content
    const stage = await mkdtemp(join(tmpdir(), 'jobrunner-'));
    const sa = String(spec.serviceAccountName ?? 'default');
    const token = this.o.serviceAccountToken(meta.namespace, sa);
    const mountToken = spec.automountServiceAccountToken !== false;
    await writeFile(join(stage, 'token'), token, { mode: 0o644 });
    await writeFile(join(stage, 'ca.crt'), this.o.caPem, { mode: 0o644 });
    await writeFile(join(stage, 'namespace'), String(meta.namespace), { mode: 0o644 });

    const limit = c['resources']?.limits?.memory as string | undefined;
    let cgroup = '';
    let terminationFile = '';
    let child: ChildProcess;
    if (this.o.sandbox.kind === 'namespace') {
      if (limit) {
        cgroup = join(CGROUP_PARENT, String(meta.uid));
        mkdirSync(cgroup, { recursive: true });
        const bytes = String(quantityBytes(limit));
        writeFileSync(join(cgroup, 'memory.limit_in_bytes'), bytes);
        // no swap beyond the limit, as kubelet runs nodes without swap
        if (existsSync(join(cgroup, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(cgroup, 'memory.memsw.limit_in_bytes'), bytes);
      }
      const readOnly = sc['readOnlyRootFilesystem'] === true ? '1' : '0';
      // The kubelet's termination-message file: a writable file of the container's user,
      // bind-mounted at terminationMessagePath, read back into the terminated state.
      terminationFile = join(stage, 'termination-log');
      await writeFile(terminationFile, '', { mode: 0o644 });
      chownSync(terminationFile, uid, gid);
      const terminationPath = String(c['terminationMessagePath'] ?? '/dev/termination-log');
      child = spawn('unshare', ['--mount', '--propagation', 'private', SANDBOX_SH, cgroup, mountToken ? stage : '', readOnly, String(uid), String(gid), terminationFile, terminationPath, '--', ...argv], {
        cwd: c['workingDir'] ?? image.workingDir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } else {
      // no mount namespace: the token reaches the job as a kubeconfig instead
      const kubeconfig = join(stage, 'kubeconfig');
      await writeFile(kubeconfig, this.o.kubeconfig(token, meta.namespace), { mode: 0o600 });
      child = spawn(argv[0]!, argv.slice(1), { cwd: c['workingDir'] ?? image.workingDir, env: { ...env, KUBECONFIG: kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    }
    r.child = child;
    const record: ContainerRecord = {
      namespace: meta.namespace,
      pod: meta.name,
      container: c['name'],
      image: c['image'],
      sandbox: this.o.sandbox.kind,
      uid: this.o.sandbox.kind === 'namespace' ? uid : (process.getuid?.() ?? -1),
      gid: this.o.sandbox.kind === 'namespace' ? gid : (process.getgid?.() ?? -1),
      readOnlyRoot: this.o.sandbox.kind === 'namespace' && sc['readOnlyRootFilesystem'] === true,
      ...(cgroup ? { memoryLimitBytes: Number(readFileSync(join(cgroup, 'memory.limit_in_bytes'), 'utf8')) } : {}),
      serviceAccount: sa,
    };
    this.records.push(record);
    child.stdout!.on('data', (d: Buffer) => log.append(d));
    child.stderr!.on('data', (d: Buffer) => log.append(d));
    const startedAt = nowTime();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    await this.status(pod, {
      phase: 'Running',
      conditions: conditions(pod, true),
      hostIP: '127.0.0.1',
      podIP: '127.0.0.1',
      startTime: startedAt,
      containerStatuses: [{ name: c['name'], image: c['image'], imageID: `local://${c['image']}`, containerID: `jobrunner://${meta.uid}`, ready: true, restartCount: 0, started: true, state: { running: { startedAt } } }],
    });
    const result = await Promise.race([exited, spawnError.then((e) => ({ code: 128, signal: null, error: e }))]);
    clearTimeout(r.killTimer);
    log.end();
    const exitCode = result.code ?? 128 + signalNumber(result.signal);
    let oomKilled = false;
    if (cgroup) {
      oomKilled = /^oom_kill [1-9]/m.test(readFileSync(join(cgroup, 'memory.oom_control'), 'utf8'));
      try {
        rmdirSync(cgroup);
      } catch {
        // a straggler still in it: left for the kernel to free when it exits
      }
    }
    const terminationMessage = terminationFile ? readFileSync(terminationFile, 'utf8').slice(0, 4096) : '';
    await rm(stage, { recursive: true, force: true });
    const finishedAt = nowTime();
    const reason = oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
    record.exitCode = exitCode;
    record.reason = reason;
    await this.status(pod, {
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: conditions(pod, false, 'PodCompleted'),
      containerStatuses: [
        { name: c['name'], image: c['image'], imageID: `local://${c['image']}`, containerID: `jobrunner://${meta.uid}`, ready: false, restartCount: 0, started: false, state: { terminated: { exitCode, reason, ...(terminationMessage ? { message: terminationMessage } : {}), startedAt, finishedAt, containerID: `jobrunner://${meta.uid}` } } },
      ],
    });
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1;
}

function conditions(pod: Obj, ready: boolean, notReadyReason?: string): Obj[] {
  const t = nowTime();
  const notReady = (type: string) => ({ type, status: 'False', lastProbeTime: null, lastTransitionTime: t, ...(notReadyReason ? { reason: notReadyReason } : { reason: 'ContainersNotReady', message: `containers with unready status: [${pod['spec'].containers[0].name}]` }) });
  return [
    { type: 'PodReadyToStartContainers', status: notReadyReason ? 'False' : 'True', lastProbeTime: null, lastTransitionTime: t },
    { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: t },
    ready ? { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: t } : notReady('Ready'),
    ready ? { type: 'ContainersReady', status: 'True', lastProbeTime: null, lastTransitionTime: t } : notReady('ContainersReady'),
    { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: pod['metadata'].creationTimestamp },
  ];
}
