// The process around the command: signals, exit code, the net for bugs. Loaded by main.ts once
// the Node.js version is known to be good.
import { cli } from './cli/cli.ts';

const stop = new AbortController();
// Kubernetes sends SIGTERM before it kills the Pod: stop between deletes and record `partial`.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => stop.abort(new Error(`received ${signal}`)));
}

try {
  const code = await cli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr, stop: stop.signal });
  // Exit now: idle keep-alive sockets must not hold a finished run (the log's last lines are written on exit).
  process.exit(code);
} catch (err) {
  // Only a bug lands here: keep the stack, it is what a bug report needs.
  process.stderr.write(`fleet-cleanup: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
