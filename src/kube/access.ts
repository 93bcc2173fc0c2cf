import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../log.ts';
import { type KubeApiError, RequestAbandoned, describeOp, isRetryable, toKubeApiError, withoutUserinfo, type KubeOp } from './errors.ts';
import { TokenBucket } from './throttle.ts';

export interface KubeAccessOptions {
  /** Steady request rate and burst of the client-side rate limit. */
  qps: number;
  burst: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Retries after the first attempt for 429, 5xx and connection errors. */
  retries: number;
  /** Per-request timeout. */
  requestTimeoutMs: number;
  logger: Logger;
  /** Base of the exponential backoff; tests shorten it. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

const MAX_RETRY_AFTER_MS = 30_000;
const READ_VERBS = new Set(['get', 'list', 'watch']);

/** No answer, or an answer that may come after the server acted (a timeout at a proxy, a crash). */
function mayHaveBeenApplied(err: KubeApiError): boolean {
  return err.status === undefined || err.status === 500 || err.status === 502 || err.status === 504;
}

/**
 * Every Kubernetes call of the job goes through `call`: rate limited, bounded in concurrency,
 * timed out, retried with backoff and jitter where a retry can help (429 honours Retry-After),
 * and turned into a KubeApiError that names the operation when it gives up.
 */
export class KubeAccess {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
  readonly server: string;
  readonly #options: Required<KubeAccessOptions>;
  readonly #bucket: TokenBucket;
  readonly #inFlight: LimitFunction;
  /** Requests sent, retries included: the job reports them per deleted object. */
  requestCount = 0;

  constructor(kubeConfig: KubeConfig, options: KubeAccessOptions) {
    this.kubeConfig = kubeConfig;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.server = withoutUserinfo(kubeConfig.getCurrentCluster()?.server ?? '(unknown server)');
    this.#options = { backoffBaseMs: 200, backoffMaxMs: 10_000, ...options };
    this.#bucket = new TokenBucket(options.qps, options.burst);
    this.#inFlight = pLimit(options.concurrency);
  }

  /**
   * Runs one API request; `fn` must pass `options` on to the client-node method it calls.
   * When `signal` fires while the request waits for its turn, it is not sent and the call
   * rejects with RequestAbandoned: a stopped run sends nothing more. A read is also dropped
   * between retries; a write already sent is retried to a known outcome.
   */
  call<T>(op: KubeOp, fn: (options: ConfigurationOptions) => Promise<T>, control: { signal?: AbortSignal } = {}): Promise<T> {
    return this.#inFlight(() => this.#withRetries(op, fn, control.signal));
  }

  async #withRetries<T>(op: KubeOp, fn: (options: ConfigurationOptions) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    const { retries, logger } = this.#options;
    // A read can be dropped at any point. A write, once sent, is seen through its retries:
    // abandoning it could leave an applied delete with no audit line and no count.
    const mutating = !READ_VERBS.has(op.verb);
    let mayHaveApplied = false;
    for (let attempt = 0; ; attempt++) {
      await this.#bucket.take();
      if (signal?.aborted && (attempt === 0 || !mutating)) throw new RequestAbandoned(op);
      this.requestCount++;
      try {
        return await fn(this.#requestOptions());
      } catch (thrown) {
        const err = toKubeApiError(op, thrown);
        // A 404 or 409 may answer our own earlier attempt, if one may have been applied.
        err.afterRetry = mayHaveApplied;
        mayHaveApplied ||= mayHaveBeenApplied(err);
        if (!isRetryable(err) || attempt >= retries) {
          throw attempt > 0 && isRetryable(err) ? err.afterAttempts(attempt + 1) : err;
        }
        const delayMs = this.#delay(attempt, err);
        logger.warn({ op: describeOp(op), status: err.status, reason: err.reason, attempt: attempt + 1, delayMs }, 'kube request failed; retrying');
        try {
          await sleep(delayMs, undefined, signal && !mutating ? { signal } : undefined);
        } catch {
          throw new RequestAbandoned(op);
        }
      }
    }
  }

  /**
   * Full jitter on an exponential backoff; a server's Retry-After is a floor, capped so that a
   * bogus hour-long answer cannot stall the run past its budget (the wait is interruptible too).
   */
  #delay(attempt: number, err: KubeApiError): number {
    const { backoffBaseMs, backoffMaxMs } = this.#options;
    const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** attempt);
    const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
    const floor = Math.min(MAX_RETRY_AFTER_MS, (err.retryAfterSeconds ?? 0) * 1000);
    return Math.round(Math.max(floor, jittered));
  }

  /** client-node's object API takes observable middleware; this one arms the request timeout. */
  #requestOptions(): ConfigurationOptions {
    const timeoutMs = this.#options.requestTimeoutMs;
    const timeout: ObservableMiddleware = {
      pre: (context: RequestContext) => {
        context.setSignal(AbortSignal.timeout(timeoutMs));
        return new Observable(Promise.resolve(context));
      },
      post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
    };
    return { middleware: [timeout], middlewareMergeStrategy: 'append' };
  }
}
