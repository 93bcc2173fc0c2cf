// A plain-http reverse proxy in front of a test registry, for hostile answers a real registry
// will not give on demand (a lying Docker-Content-Digest, an error body echoing the request's
// Authorization) and for judging each DELETE at the moment it arrives.
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyHooks {
  /** Runs before the request is forwarded; an answer given here is sent instead. */
  onRequest?(req: IncomingMessage): { status: number; headers?: Record<string, string>; body?: string } | void;
  /** Awaited before the request is forwarded (after onRequest). */
  beforeForward?(req: IncomingMessage): Promise<void>;
  /** May rewrite the registry's answer headers. */
  onResponse?(req: IncomingMessage, status: number, headers: IncomingHttpHeaders): void;
}

export interface RegistryProxy {
  /** 127.0.0.1:PORT */
  host: string;
  hooks: ProxyHooks;
  /** TCP connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** `target()`: the registry's host:port, asked per request (the proxy may start before it). */
export async function startRegistryProxy(target: () => string): Promise<RegistryProxy> {
  const proxy: { hooks: ProxyHooks } = { hooks: {} };
  const server: Server = createServer(async (req, res) => {
    const answer = proxy.hooks.onRequest?.(req);
    if (answer) {
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
      return;
    }
    req.pause();
    await proxy.hooks.beforeForward?.(req);
    const [targetHost, targetPort] = target().split(':') as [string, string];
    const upstream = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (up) => {
      const headers = { ...up.headers };
      proxy.hooks.onResponse?.(req, up.statusCode ?? 502, headers);
      res.writeHead(up.statusCode ?? 502, headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  // Idle connections stay open for the whole test (Node's default closes them after 5 s).
  server.keepAliveTimeout = 60_000;
  let connections = 0;
  server.on('connection', () => {
    connections++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get hooks() {
      return proxy.hooks;
    },
    set hooks(h: ProxyHooks) {
      proxy.hooks = h;
    },
    get connections() {
      return connections;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
