// How client-node's requests reach the API server: undici's `request()` on the run's pool of
// keep-alive connections, instead of client-node's default library (undici's `fetch` with the
// dispatcher client-node builds per request). fetch costs a Request, a Response, a Headers, a
// web stream and a dependent AbortSignal per request; at a thousand deletes a second that was
// a fifth of the job's CPU and most of its garbage. The API classes, their parameters,
// serialisation and authentication stay client-node's: only the HTTP library is swapped,
// through the `httpApi` option client-node offers for it.
import { IsomorphicFetchHttpLibrary, Observable, ResponseContext, type HttpLibrary, type KubeConfig, type RequestContext, type ResponseBody, type SecurityAuthentication } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import type { ConnectionPool } from './connections.ts';

const viaFetch = new IsomorphicFetchHttpLibrary();

export interface SendControl {
  /** No whole answer within this long fails the request. */
  timeoutMs: number;
  /** Drops the request in flight (a read whose run stopped). */
  signal?: AbortSignal | undefined;
}

/** An HTTP library for one request's client-node call: sent on `pool`, within `control`. */
export function pooledTransport(pool: ConnectionPool, control: SendControl): HttpLibrary {
  return {
    send(request: RequestContext): Observable<ResponseContext> {
      return new Observable(
        pool.dispatcher().then((dispatcher) => {
          if (!dispatcher) {
            // A SOCKS proxy: client-node's own library and per-request dispatcher.
            const timeout = AbortSignal.timeout(control.timeoutMs);
            request.setSignal(control.signal ? AbortSignal.any([timeout, control.signal]) : timeout);
            return viaFetch.send(request).toPromise();
          }
          return send(dispatcher, request, control);
        }),
      );
    },
  };
}

async function send(dispatcher: Dispatcher, request: RequestContext, control: SendControl): Promise<ResponseContext> {
  const url = new URL(request.getUrl());
  const body = request.getBody();
  if (body !== undefined && typeof body !== 'string' && !(body instanceof URLSearchParams)) {
    // Form data is for file uploads; no call of this job sends one.
    throw new TypeError(`${request.getHttpMethod()} ${url.pathname}: a multipart body is not supported`);
  }
  // One controller and one timer per request, not AbortSignal.timeout() combined with the
  // caller's signal by AbortSignal.any(): those were a tenth of the garbage at a thousand
  // requests a second. (undici's own headersTimeout would be cheaper still, but above a second
  // it may fire up to a second late, and the lock's timing counts on this timeout.)
  const abort = new AbortController();
  const timer = setTimeout(timedOut, control.timeoutMs, abort);
  const stop = control.signal;
  const onStop = () => abort.abort(stop?.reason);
  if (stop?.aborted) onStop();
  else stop?.addEventListener('abort', onStop, { once: true });
  try {
    return await exchange(dispatcher, request, url, body, abort.signal);
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}

function timedOut(abort: AbortController): void {
  abort.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
}

async function exchange(dispatcher: Dispatcher, request: RequestContext, url: URL, body: string | URLSearchParams | undefined, signal: AbortSignal): Promise<ResponseContext> {
  const response = await dispatcher.request({
    origin: url.origin,
    path: url.pathname + url.search,
    method: request.getHttpMethod(),
    headers: request.getHeaders(),
    ...(body !== undefined ? { body: body.toString() } : {}),
    signal,
  });
  // Read whole before returning: the connection goes back to the pool even when the caller
  // never looks at the body, and the request's signal still bounds the read.
  const bytes = Buffer.from(await response.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const responseBody: ResponseBody = {
    text: async () => bytes.toString('utf8'),
    binary: async () => bytes,
    stream: () => null,
  };
  return new ResponseContext(response.statusCode, headers, responseBody);
}

/** The part of KubeConfig that turns the current user into request headers (token, exec plugin, token file). */
interface AuthorizationHeader {
  applyAuthorizationHeader(options: { headers?: Record<string, string> }): Promise<void>;
}

/**
 * client-node's kubeconfig authentication less what the pool already has: per request it also
 * reads the CA and client certificate again (from disk, in a Pod) and builds an undici Agent
 * that the pool's transport never uses. The credentials themselves are applied exactly as
 * client-node applies them, per request (a rotated token file or an exec plugin's new token is
 * picked up). Undefined where this client-node does not have that step: its own then applies.
 */
export function credentialsOnly(kubeConfig: KubeConfig): SecurityAuthentication | undefined {
  const applier = kubeConfig as unknown as Partial<AuthorizationHeader>;
  if (typeof applier.applyAuthorizationHeader !== 'function') return undefined;
  return {
    getName: () => 'kubeconfig credentials',
    async applySecurityAuthentication(context: RequestContext): Promise<void> {
      const user = kubeConfig.getCurrentUser();
      if (user?.username) context.setHeaderParam('Authorization', `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`);
      const options: { headers?: Record<string, string> } = {};
      await (applier as AuthorizationHeader).applyAuthorizationHeader(options);
      for (const [name, value] of Object.entries(options.headers ?? {})) context.setHeaderParam(name, `${value}`);
    },
  };
}
