// Standalone: node test/apiserver/main.ts --kubeconfig <file> [--port N] [--continue-ttl 5m] [--rbac] [--run-jobs]
// --run-jobs: the Job runner (test/jobrunner/) runs Jobs of the chart's image with `npm run build`'s dist/.
// Writes an admin kubeconfig, prints one line with "ready" and the URL, stops on SIGTERM/SIGINT.

import { parseArgs } from 'node:util';
import { checkoutImage, CHART_IMAGE, startJobRunner } from '../jobrunner/index.ts';
import { startApiServer } from './index.ts';

/** "300000", "300s", "5m", "1h", "250ms" → milliseconds. */
export function parseDuration(s: string): number {
  const m = s.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h)?$/);
  if (!m) throw new Error(`invalid duration: ${s}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      port: { type: 'string', default: '0' },
      'continue-ttl': { type: 'string', default: '5m' },
      rbac: { type: 'boolean', default: false },
      'run-jobs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.kubeconfig) {
    console.error('usage: node test/apiserver/main.ts --kubeconfig <file> [--port N] [--continue-ttl 5m] [--rbac] [--run-jobs]');
    process.exit(values.help ? 0 : 2);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port: ${values.port}`);
  const server = await startApiServer({ port, continueTtlMs: parseDuration(values['continue-ttl']), rbac: values.rbac, contract: 'record' });
  await server.writeKubeconfig(values.kubeconfig);
  const runner = values['run-jobs'] ? await startJobRunner(server, { images: { [CHART_IMAGE]: checkoutImage() } }) : undefined;
  if (runner) console.log(`job runner: ${CHART_IMAGE} runs dist/main.js (${runner.sandbox.kind === 'namespace' ? 'mount namespace, cgroup' : 'plain processes'})`);
  console.log(`test apiserver ready at ${server.url} (kubeconfig ${values.kubeconfig})`);
  const stop = (signal: string) => {
    console.log(`test apiserver stopping (${signal})`);
    // Requests kube-apiserver would have refused for their shape (they were refused here too).
    for (const v of server.contract.violations()) console.error(`contract violation: ${v.request} → ${v.code} ${v.message}`);
    Promise.all([runner?.close(), server.close()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (import.meta.main) {
  main().catch((e: unknown) => {
    console.error(`test apiserver: ${(e as Error).message}`);
    process.exit(1);
  });
}
