import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeAccess } from '../kube/access.ts';
import { ConnectionPool } from '../kube/connections.ts';
import { loadKubeConfig, KubeConfigError, podNamespace } from '../kube/config.ts';
import { KubeApiError } from '../kube/errors.ts';
import { createLogger, defaultLogFormat, textStream, type Logger } from '../log.ts';
import { PHASES } from '../phases.ts';
import { MarkerEvents, runEvent } from '../events/recorder.ts';
import { Progress, type ProgressClock } from '../progress/progress.ts';
import { PlanTap, printPlan } from './plan-table.ts';
import type { PhaseResult, RunContext } from '../phase.ts';
import { acquireMarker, defaultHolder, MarkerError, type Acquired, type MarkerLock } from '../marker/lock.ts';
import { buildSummary, overallCause, overallStatus } from '../marker/summary.ts';
import { formatDuration } from './duration.ts';
import type { Options } from './options.ts';
import { summaryLine } from './report.ts';
import { messageOf } from '../error-text.ts';
import type { Clock } from '../retry.ts';

/** Where the run talks: JSON log lines to `stdout`, one readable line per event to `stderr`. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: { write(text: string): unknown };
  /** Aborts the run from outside (SIGTERM): phases stop between deletes, the marker says partial. */
  stop?: AbortSignal;
  /** The Pod's namespace; defaults to the service account mount. */
  podNamespace?: () => string | undefined;
  /** The clock of the progress lines; tests drive it. */
  progressClock?: ProgressClock;
  /** The API client's clock (retry backoff, Retry-After, rate ceiling); tests make its waits instant. */
  clock?: Clock;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const DEFAULT_NAMESPACE = 'cattle-fleet-system';

/**
 * One run, and with --termination-log its last line (the summary, or the one-line error) written
 * there as it exits: Kubernetes shows it as the container's termination message.
 */
export async function runCleanup(options: Options, io: CliIo): Promise<number> {
  if (options.terminationLog === undefined) return runOnce(options, io);
  let last = '';
  const stderr = { write: (text: string) => ((last = text.trim().split('\n').at(-1) ?? last), io.stderr.write(text)) };
  const code = await runOnce(options, { ...io, stderr });
  try {
    // Kubernetes keeps at most 4096 bytes of it.
    writeFileSync(options.terminationLog, Buffer.from(last.replace(/^fleet-cleanup: /, '')).subarray(0, 4096));
  } catch (err) {
    io.stderr.write(`fleet-cleanup: warning: cannot write the termination log ${options.terminationLog}: ${messageOf(err)}\n`);
  }
  return code;
}

/** One run: marker, phases, marker again. Returns the exit code; expected failures never throw. */
async function runOnce(options: Options, io: CliIo): Promise<number> {
  const format = options.logFormat ?? defaultLogFormat(io.stdout);
  // A dry run in text keeps its planned deletions for one table at the end.
  const planTap = format === 'text' && options.dryRun ? new PlanTap(textStream(io.stdout)) : undefined;
  const logger = planTap ? createLogger({ level: options.logLevel, destination: planTap }) : createLogger({ level: options.logLevel, destination: io.stdout, format });
  const say = (line: string) => io.stderr.write(`fleet-cleanup: ${line}\n`);
  const fail = (code: number, line: string, fields: object = {}): number => {
    logger.error(fields, line);
    say(`error: ${line}`);
    return code;
  };

  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(options.kubeconfig, io.env as NodeJS.ProcessEnv, options.context);
  } catch (err) {
    if (err instanceof KubeConfigError) return fail(EXIT_USAGE, err.message);
    throw err;
  }

  const started = performance.now();
  const namespace = options.namespace ?? (io.podNamespace ?? podNamespace)() ?? DEFAULT_NAMESPACE;
  const holder = options.holder ?? defaultHolder(io.env.POD_NAME || hostname(), process.pid);
  // One pool of keep-alive connections for the run: the phases' requests plus the lock's.
  const connections = new ConnectionPool(kubeConfig, { connections: options.concurrency + 2 });
  const clientOptions = {
    ...(options.qps !== undefined ? { qps: options.qps, burst: options.burst ?? options.qps } : {}),
    retries: options.retries, requestTimeoutMs: options.requestTimeoutMs, logger, connections,
    ...(io.clock ? { clock: io.clock } : {}),
  };
  const access = new KubeAccess(kubeConfig, { ...clientOptions, concurrency: options.concurrency });
  // The lock has its own limit so that its heartbeat never queues behind a phase's deletes.
  const lockAccess = new KubeAccess(kubeConfig, { ...clientOptions, concurrency: 1 });
  const apiRequests = () => access.requestCount + lockAccess.requestCount;
  logger.info({ server: access.server, marker: `${namespace}/${options.markerName}`, runKey: options.runKey, holder, dryRun: options.dryRun }, 'fleet-cleanup starting');

  let acquired: Acquired;
  try {
    acquired = await acquireMarker(lockAccess, {
      namespace, name: options.markerName, runKey: options.runKey, holder, force: options.force,
      lockTimeoutMs: options.lockTimeoutMs, dryRun: options.dryRun, now: () => new Date(), logger,
    });
  } catch (err) {
    return fail(EXIT_FAILED, describeError(err, access.server));
  }
  logger.info({ marker: acquired.kind === 'held' ? 'taken' : acquired.decision.action }, acquired.message);
  say(acquired.message);
  if (acquired.kind === 'skip') return EXIT_OK;

  const lock = acquired.kind === 'held' ? acquired.lock : undefined;
  const budget = runBudget(options.timeBudgetMs, lock, io.stop);
  lock?.startRenewing();
  // Events only when the run holds the marker they are about (never in a dry run: it changes nothing).
  const events = lock
    ? new MarkerEvents({ access, namespace, name: options.markerName, instance: io.env.POD_NAME || hostname(), logger, warn: (line) => say(`warning: ${line}`) })
    : undefined;
  const progress = new Progress({ logger, say, dryRun: options.dryRun, ...(io.progressClock ? { clock: io.progressClock } : {}) });
  const ctx: RunContext = { access, logger, dryRun: options.dryRun, budget: budget.signal, now: () => new Date(), progress, ...(events ? { events } : {}), ...(lock ? { fence: () => lock.fenceCause() } : {}) };
  let results: PhaseResult[];
  try {
    results = await runPhases(ctx, options);
  } finally {
    progress.stop();
    budget.dispose();
    await lock?.stop();
  }
  if (planTap) printPlan(planTap.rows, io.stdout);

  const summary = buildSummary(results, performance.now() - started, apiRequests());
  const status = overallStatus(results);
  const cause = overallCause(results);
  const { limiter } = access;
  logger.info({ requests: apiRequests(), concurrency: { settled: limiter.target, mean: Number(limiter.meanTarget.toFixed(1)), peak: limiter.peakLimit, max: options.concurrency }, throttled: limiter.throttled }, 'API client');
  logger.info({ status, cause, summary, dryRun: options.dryRun }, 'run finished');

  if (lock) {
    try {
      await lock.finish(status, new Date(), cause, JSON.stringify(summary));
    } catch (err) {
      const line = summaryLine('aborted', results, summary, false);
      say(line);
      events?.record('Warning', 'CleanupFailed', `${line}; ${describeError(err, access.server)}`);
      await events?.flush();
      return fail(EXIT_FAILED, describeError(err, access.server));
    }
  }
  const line = summaryLine(options.dryRun ? `dry run (marker not written), would end ${status}` : status, results, summary, options.dryRun);
  const event = runEvent(status);
  events?.record(event.type, event.reason, line);
  await events?.flush();
  say(line);
  if (status === 'completed') return EXIT_OK;
  if (status === 'partial' && options.partialOk) return EXIT_OK;
  return EXIT_FAILED;
}

/** The registered phases in order (src/phases.ts); a phase that throws is recorded as failed, and the next still runs. */
async function runPhases(ctx: RunContext, options: Options): Promise<PhaseResult[]> {
  const results: PhaseResult[] = [];
  for (const phase of PHASES) {
    if (phase.skipped(options)) {
      results.push({ phase: phase.name, outcome: 'skipped', cause: `--skip-${phase.name}`, tallies: {} });
    } else if (ctx.budget.aborted) {
      results.push({ phase: phase.name, outcome: 'partial', cause: `not started: ${reasonText(ctx.budget.reason)}`, tallies: {} });
    } else {
      results.push(await runPhase(ctx.logger, phase.name, () => phase.run(ctx, options)));
      ctx.progress?.idle();
    }
  }
  return results;
}

async function runPhase(logger: Logger, name: string, run: () => Promise<PhaseResult>): Promise<PhaseResult> {
  logger.info({ phase: name }, `phase ${name} starting`);
  try {
    const result = await run();
    logger.info({ phase: name, outcome: result.outcome, cause: result.cause, tallies: result.tallies }, `phase ${name} ${result.outcome}`);
    return result;
  } catch (err) {
    // A phase should report its own failures; this is the net for the ones it did not foresee.
    const cause = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    logger.error({ phase: name, err: cause }, `phase ${name} failed`);
    return { phase: name, outcome: 'failed', cause, tallies: {} };
  }
}

/** The run's budget: aborts when --time-budget is spent, the lock is lost, or the process is told to stop. */
function runBudget(timeBudgetMs: number, lock: MarkerLock | undefined, stop: AbortSignal | undefined): { signal: AbortSignal; dispose(): void } {
  // Not AbortSignal.timeout: the reason names the budget, and the marker's cause carries it.
  const spent = new AbortController();
  const timer = timeBudgetMs > 0 ? setTimeout(() => spent.abort(new Error(`time budget ${formatDuration(timeBudgetMs)} spent`)), timeBudgetMs).unref() : undefined;
  const sources = [spent.signal, lock?.lost, stop].filter((s): s is AbortSignal => s !== undefined);
  return { signal: AbortSignal.any(sources), dispose: () => clearTimeout(timer) };
}

function reasonText(reason: unknown): string {
  return messageOf(reason);
}

/** One line for the operator: unreachable servers say which server, API errors name their op. */
function describeError(err: unknown, server: string): string {
  if (err instanceof KubeApiError && err.status === undefined) return `cannot reach the Kubernetes API server ${server}: ${err.message}`;
  if (err instanceof KubeApiError || err instanceof MarkerError) return err.message;
  throw err;
}
