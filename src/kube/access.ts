import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type AuthMethods,
  type ConfigurationOptions,
} from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { Abandoned, DEFAULT_BACKOFF, realClock, retrying, type Attempt, type BackoffPolicy, type Clock } from '../retry.ts';
import { ConnectionPool } from './connections.ts';
import { type KubeApiError, RequestAbandoned, describeOp, isRetryable, toKubeApiError, withoutUserinfo, type KubeOp } from './errors.ts';
import { AdaptiveLimiter } from './throttle.ts';
import { credentialsOnly, pooledTransport } from './transport.ts';

export interface KubeAccessOptions {
  /** The most requests in flight; the limit adapts below it to what the server admits. */
  concurrency: number;
  /** Where the adaptive limit starts; default min(8, concurrency). */
  initialConcurrency?: number;
  /** Optional ceiling on the request rate, and its burst; 0 or unset: none. */
  qps?: number;
  burst?: number;
  /** Retries after the first attempt for 429, 5xx and connection errors. */
  retries: number;
  /** Per-request timeout. */
  requestTimeoutMs: number;
  logger: Logger;
  /** Base of the exponential backoff; tests shorten it. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  clock?: Clock;
  /** Keep-alive connections to the server, shared with other clients of the run; default: a pool of its own. */
  connections?: ConnectionPool;
}

const READ_VERBS = new Set(['get', 'list', 'watch']);

/** No answer, or an answer that may come after the server acted (a timeout at a proxy, a crash). */
function mayHaveBeenApplied(err: KubeApiError): boolean {
  return err.status === undefined || err.status === 500 || err.status === 502 || err.status === 504;
}

/**
 * Every Kubernetes call of the job goes through `call`: over pooled keep-alive connections,
 * bounded by an adaptive concurrency limit (and an optional rate ceiling), timed out, retried
 * with backoff and jitter where a retry can help (429 honours Retry-After), and turned into a
 * KubeApiError that names the operation when it gives up.
 */
export class KubeAccess {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
  readonly server: string;
  readonly limiter: AdaptiveLimiter;
  readonly connections: ConnectionPool;
  readonly #ownsConnections: boolean;
  readonly #retries: number;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #backoff: BackoffPolicy;
  readonly #clock: Clock;
  /** Credentials without the TLS material and dispatcher client-node builds per request; undefined behind a SOCKS proxy. */
  readonly #credentials: AuthMethods | undefined;
  /** Requests sent, retries included: the job reports them per deleted object. */
  requestCount = 0;

  constructor(kubeConfig: KubeConfig, options: KubeAccessOptions) {
    this.kubeConfig = kubeConfig;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.server = withoutUserinfo(kubeConfig.getCurrentCluster()?.server ?? '(unknown server)');
    this.#clock = options.clock ?? realClock;
    this.limiter = new AdaptiveLimiter({
      max: options.concurrency,
      clock: this.#clock,
      ...(options.initialConcurrency !== undefined ? { initial: options.initialConcurrency } : {}),
      ...(options.qps ? { qps: options.qps, burst: options.burst ?? options.qps } : {}),
    });
    this.#ownsConnections = options.connections === undefined;
    this.connections = options.connections ?? new ConnectionPool(kubeConfig, { connections: options.concurrency + 2 });
    const credentials = this.connections.viaSocksProxy ? undefined : credentialsOnly(kubeConfig);
    this.#credentials = credentials ? { default: credentials } : undefined;
    this.#retries = options.retries;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#logger = options.logger;
    this.#backoff = { ...DEFAULT_BACKOFF, baseMs: options.backoffBaseMs ?? DEFAULT_BACKOFF.baseMs, maxMs: options.backoffMaxMs ?? DEFAULT_BACKOFF.maxMs };
  }

  /**
   * Runs one API request; `fn` must pass `options` on to the client-node method it calls.
   * When `signal` fires while the request waits for its turn, it is not sent and the call
   * rejects with RequestAbandoned: a stopped run sends nothing more. A read is also dropped
   * in flight and between retries; a write already sent is retried to a known outcome.
   */
  call<T>(op: KubeOp, fn: (options: ConfigurationOptions) => Promise<T>, control: { signal?: AbortSignal } = {}): Promise<T> {
    const write = !READ_VERBS.has(op.verb);
    return retrying((attempt) => this.#attempt(op, fn, attempt), {
      retries: this.#retries,
      backoff: this.#backoff,
      clock: this.#clock,
      signal: control.signal,
      write,
      classify: (err) => {
        const e = err as KubeApiError;
        return {
          retryable: isRetryable(e),
          mayHaveApplied: mayHaveBeenApplied(e),
          ...(e.retryAfterSeconds !== undefined ? { retryAfterMs: e.retryAfterSeconds * 1000 } : {}),
        };
      },
      onRetry: (err, retry, delayMs) => {
        const e = err as KubeApiError;
        this.#logger.warn({ op: describeOp(op), status: e.status, reason: e.reason, attempt: retry, delayMs }, 'kube request failed; retrying');
      },
      onGiveUp: (err, attempts) => (attempts > 1 ? (err as KubeApiError).afterAttempts(attempts) : err),
    }).catch((err: unknown) => {
      throw err instanceof Abandoned ? new RequestAbandoned(op) : err;
    });
  }

  async #attempt<T>(op: KubeOp, fn: (options: ConfigurationOptions) => Promise<T>, attempt: Attempt): Promise<T> {
    // A list goes ahead of queued deletes: the next page is fetched while this page's deletes run.
    const slot = await this.limiter.acquire(attempt.dropSignal, { first: op.verb === 'list' });
    this.requestCount++;
    const started = this.#clock.now();
    // Lists differ in size and cost; the latency the limiter learns from is that of single-object requests.
    const timed = op.verb !== 'list';
    try {
      const value = await fn(this.#requestOptions(attempt.signal));
      slot.release(timed ? { latencyMs: this.#clock.now() - started } : {});
      return value;
    } catch (thrown) {
      const err = toKubeApiError(op, thrown);
      // A 404 or 409 may answer our own earlier attempt, if one may have been applied.
      err.afterRetry = attempt.earlierMayHaveApplied;
      const throttled = err.status === 429 || err.status === 503;
      slot.release(throttled ? { throttled } : timed && err.status !== undefined ? { latencyMs: this.#clock.now() - started } : {});
      throw err;
    }
  }

  /** Closes the connections this client opened (not a pool it was given). */
  async close(): Promise<void> {
    if (this.#ownsConnections) await this.connections.close();
  }

  /** Per request: sent on the shared connection pool, within the request timeout and the caller's stop (reads). */
  #requestOptions(signal: AbortSignal | undefined): ConfigurationOptions {
    const httpApi = pooledTransport(this.connections, { timeoutMs: this.#timeoutMs, signal });
    return this.#credentials ? { httpApi, authMethods: this.#credentials } : { httpApi };
  }
}
