// The embedded cluster an operator meets in the tests and the demo: the API test server with
// RBAC, the Job runner running this project's image, and the pinned helm and kubectl driving
// it with a kubeconfig, as on a real cluster. Every command is recorded with its exit code
// and wall time.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApiServer, type TestApiServer } from '../apiserver/index.ts';
import { buildImage, CHART_IMAGE, startJobRunner, type JobRunner } from '../jobrunner/index.ts';
import { tool } from '../toolchain/index.ts';

export const CHART_DIR = fileURLToPath(new URL('../../helm-hook', import.meta.url));
export const NAMESPACE = 'cattle-fleet-system';
/** The release name whose full name is the chart's name: Job, CronJob and ServiceAccount are `fleet-cleanup`. */
export const RELEASE = 'fleet-cleanup';

export interface OperatorCommand {
  /** as typed, e.g. `helm upgrade fleet-cleanup ./helm-hook -n cattle-fleet-system` */
  line: string;
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface EmbeddedCluster {
  readonly server: TestApiServer;
  readonly runner: JobRunner;
  readonly kubeconfigPath: string;
  readonly transcript: OperatorCommand[];
  /** Runs the pinned helm or kubectl; `shown` replaces paths in the recorded line. */
  run(cmd: 'helm' | 'kubectl', args: string[], opts?: { shown?: string }): Promise<OperatorCommand>;
  /** A copy of the chart with another version (a new Fleet release). */
  chartWithVersion(version: string): Promise<string>;
  close(): Promise<void>;
}

export interface EmbeddedOptions {
  /** the runner's first backoff after a failed Pod (kube: 10 s) */
  backoffBaseMs?: number;
  onStart?(line: string): void;
  onEnd?(cmd: OperatorCommand): void;
}

export async function startEmbeddedCluster(opts: EmbeddedOptions = {}): Promise<EmbeddedCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-cleanup-operator-'));
  const built = await buildImage();
  const server = await startApiServer({ rbac: true });
  const kubeconfigPath = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfigPath);
  const runner = await startJobRunner(server, { images: { [CHART_IMAGE]: built.image }, ...(opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs } : {}) });
  // helm and kubectl see only this cluster and keep their state in the scratch directory
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: dir,
    KUBECONFIG: kubeconfigPath,
    HELM_CACHE_HOME: join(dir, 'helm-cache'),
    HELM_CONFIG_HOME: join(dir, 'helm-config'),
    HELM_DATA_HOME: join(dir, 'helm-data'),
  };
  const transcript: OperatorCommand[] = [];
  return {
    server,
    runner,
    kubeconfigPath,
    transcript,
    run(cmd, args, o = {}) {
      const line = o.shown ?? [cmd, ...args.map((a) => (/[\s'"{}$]/.test(a) ? `'${a}'` : a))].join(' ');
      opts.onStart?.(line);
      const started = performance.now();
      return new Promise((resolve) => {
        execFile(tool(cmd), args, { env, timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
          const result = { line, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, ms: Math.round(performance.now() - started) };
          transcript.push(result);
          opts.onEnd?.(result);
          resolve(result);
        });
      });
    },
    async chartWithVersion(version) {
      const target = join(dir, `chart-${version}`, 'fleet-cleanup');
      await cp(CHART_DIR, target, { recursive: true });
      const chartYaml = join(target, 'Chart.yaml');
      await writeFile(chartYaml, (await readFile(chartYaml, 'utf8')).replace(/^version: .*$/m, `version: ${version}`));
      return target;
    },
    async close() {
      await runner.close();
      await server.close();
      await built.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
