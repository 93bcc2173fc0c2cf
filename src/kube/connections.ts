import type { KubeConfig } from '@kubernetes/client-node';
import type { RequestOptions } from 'node:https';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';

/**
 * One pool of keep-alive connections to the API server, shared by every request of the run.
 *
 * client-node 2.0.1 builds a new undici Agent for every request (KubeConfig
 * applySecurityAuthentication → createDispatcher), so every request pays a TCP and TLS
 * handshake. This pool is built once, from the same dispatcher options client-node derives
 * from the kubeconfig (CA, client certificate and key, skip-verify, server name, proxy);
 * `transport.ts` sends every request through it after client-node has applied its credentials
 * (token, exec plugin, basic auth are still applied per request, exactly as before).
 */
export class ConnectionPool {
  readonly #kubeConfig: KubeConfig;
  readonly #connections: number;
  #dispatcher: Promise<Dispatcher | undefined> | undefined;

  /**
   * Behind a SOCKS proxy (client-node's createDispatcherOptions rule) the pool has no
   * dispatcher: each request then keeps the one client-node builds with its credentials.
   */
  readonly viaSocksProxy: boolean;

  /** `connections`: the most connections to the server at once (the requests in flight plus a few). */
  constructor(kubeConfig: KubeConfig, options: { connections: number }) {
    this.#kubeConfig = kubeConfig;
    this.#connections = options.connections;
    this.viaSocksProxy = kubeConfig.getCurrentCluster()?.proxyUrl?.startsWith('socks') === true;
  }

  /** The pool's dispatcher; undefined for a SOCKS proxy, where client-node's own per-request dispatcher is used. */
  dispatcher(): Promise<Dispatcher | undefined> {
    return (this.#dispatcher ??= this.#build());
  }

  async close(): Promise<void> {
    const dispatcher = await this.#dispatcher;
    await dispatcher?.close();
  }

  async #build(): Promise<Dispatcher | undefined> {
    const kc = this.#kubeConfig;
    // The public way to read what client-node applies: TLS material and flags from the kubeconfig.
    const https: RequestOptions = {};
    await kc.applyToHTTPSOptions(https);
    const tls = {
      ...(https.ca !== undefined ? { ca: https.ca } : {}),
      ...(https.cert !== undefined ? { cert: https.cert } : {}),
      ...(https.key !== undefined ? { key: https.key } : {}),
      ...(https.pfx !== undefined ? { pfx: https.pfx } : {}),
      ...(https.passphrase !== undefined ? { passphrase: https.passphrase } : {}),
      ...(https.rejectUnauthorized !== undefined ? { rejectUnauthorized: https.rejectUnauthorized } : {}),
      ...(https.servername !== undefined ? { servername: https.servername } : {}),
    };
    const options = kc.createDispatcherOptions(kc.getCurrentCluster(), tls);
    const pool = { connections: this.#connections, keepAliveTimeout: 30_000 };
    switch (options.type) {
      case 'none':
        return new Agent(pool).compose(keepBodyRequestsAlive);
      case 'agent':
        return new Agent({ ...pool, connect: options.connect }).compose(keepBodyRequestsAlive);
      case 'proxy':
        return new ProxyAgent({ ...pool, uri: options.uri, requestTls: options.requestTls, connect: options.connect }).compose(keepBodyRequestsAlive);
      default:
        // SOCKS proxies: client-node's own dispatcher per request (rare; correctness first).
        return undefined;
    }
  }
}

/**
 * undici closes a connection after a request with a body whose method "does not expect one"
 * (DELETE): every delete carries its preconditions as a body, so every delete would cost a
 * new connection. kube-apiserver (Go net/http) reads DeleteOptions bodies, and client-go
 * itself sends them on kept-alive connections, so the connection stays open.
 */
const keepBodyRequestsAlive: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) =>
  dispatch(opts.method === 'DELETE' && opts.body != null ? { ...opts, reset: false } : opts, handler);
