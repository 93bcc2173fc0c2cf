// The HTTP request pipeline: parse → authenticate → record → faults → authorize → route.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Authenticator } from './auth.ts';
import { allowAll, forbiddenMessage, type Attributes, type Authorizer } from './authorize.ts';
import { discovery } from './discovery.ts';
import { ApiError, apfTooManyRequests, fromCode, methodNotAllowed, notFoundPath, qualified, unauthorized } from './errors.ts';
import { ContractLog, preflight } from './contract.ts';
import { Faults, RequestLog, type RequestRecord } from './faults.ts';
import { FlowControl, type FlowControlOptions } from './flowcontrol.ts';
import { create, del, deleteCollection, get, list, patch, update, type Ctx, type Reply, resolveType } from './handlers.ts';
import { openapi } from './openapi.ts';
import { servePodLog, type PodLogSource } from './pod-log.ts';
import { Snapshots } from './paging.ts';
import { RbacAuthorizer } from './rbac.ts';
import { requestInfo } from './requestinfo.ts';
import { Catalogue, typesFromCrd } from './resources.ts';
import { Store } from './store.ts';
import { selfSignedCertificate, type Certificate } from './tls.ts';
import type { KubeObject, UserInfo } from './types.ts';
import { serveWatch } from './watch.ts';

export interface ServerOptions {
  port: number;
  continueTtlMs: number;
  rbac: boolean;
  flowControl?: FlowControlOptions;
}

/** kube-apiserver's http.Server IdleTimeout (apiserver/pkg/server/secure_serving.go). */
const KUBE_IDLE_TIMEOUT_MS = 90_000;

export class ApiServer {
  readonly catalogue = new Catalogue();
  readonly store = new Store(this.catalogue);
  readonly auth = new Authenticator();
  readonly faults = new Faults();
  readonly requests = new RequestLog();
  /** Requests kube-apiserver would refuse for their shape (see contract.ts). */
  readonly contract = new ContractLog();
  /** Client connections accepted so far (TCP, TLS or not): the bench reports them per run. */
  connectionCount = 0;
  /** APF-like capacity per user (flowcontrol.ts); off unless set. */
  flowControl: FlowControl | undefined;
  /** The kubelet's side of pods/log (the Job runner sets it). */
  podLogSource: PodLogSource | undefined;
  private readonly snapshots: Snapshots;
  private readonly authorizer: Authorizer;
  private readonly http: Server;
  private readonly https: Server;
  private readonly listener: NetServer;
  private readonly sockets = new Set<Socket>();
  private readonly closers = new Set<() => void>();
  readonly certificate: Certificate = selfSignedCertificate();
  /** http://127.0.0.1:PORT (fetch, client-node) */
  url = '';
  /** https://127.0.0.1:PORT, same port (kubectl sends tokens only over TLS) */
  httpsUrl = '';

  constructor(opts: ServerOptions) {
    if (opts.flowControl) this.flowControl = new FlowControl(opts.flowControl);
    this.snapshots = new Snapshots(opts.continueTtlMs);
    this.authorizer = opts.rbac ? new RbacAuthorizer(this.store, this.catalogue) : allowAll;
    this.seed();
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.http = createServer(handler);
    this.https = createHttpsServer({ key: this.certificate.keyPem, cert: this.certificate.certPem }, handler);
    // kube-apiserver keeps an idle connection 90 s (secure_serving.go IdleTimeout), Node 5 s.
    this.http.keepAliveTimeout = KUBE_IDLE_TIMEOUT_MS;
    this.https.keepAliveTimeout = KUBE_IDLE_TIMEOUT_MS;
    // One port, two protocols: a TLS ClientHello starts with 0x16, plain HTTP with a method
    // name. TLS connections are relayed to an internal https listener (node's TLS layer reads
    // the socket natively and would miss the sniffed first bytes).
    this.listener = createNetServer((socket) => {
      this.connectionCount++;
      this.track(socket);
      socket.once('data', (first: Buffer) => {
        socket.pause();
        if (first[0] === 0x16) {
          const upstream = connect(this.httpsPort, '127.0.0.1');
          this.track(upstream);
          upstream.write(first);
          socket.pipe(upstream).pipe(socket);
          socket.on('close', () => upstream.destroy());
          upstream.on('close', () => socket.destroy());
        } else {
          socket.unshift(first);
          this.http.emit('connection', socket);
        }
        socket.resume();
      });
    });
    this.port = opts.port;
  }

  private readonly port: number;
  private httpsPort = 0;

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.https.once('error', reject);
      this.https.listen(0, '127.0.0.1', () => resolve());
    });
    this.httpsPort = (this.https.address() as AddressInfo).port;
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(this.port, '127.0.0.1', () => resolve());
    });
    const port = (this.listener.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${port}`;
    this.httpsUrl = `https://127.0.0.1:${port}`;
  }

  /** Ends every open watch, as an API server restart would (tests of a broken watch). */
  closeWatches(): void {
    for (const c of [...this.closers]) c();
  }

  async close(): Promise<void> {
    for (const c of this.closers) c();
    const closed = Promise.all([
      new Promise<void>((resolve) => this.listener.close(() => resolve())),
      new Promise<void>((resolve) => this.https.close(() => resolve())),
    ]);
    for (const s of this.sockets) s.destroy();
    this.http.closeAllConnections();
    this.https.closeAllConnections();
    await closed;
  }

  /** The cluster a fresh kube-apiserver starts with, and CRDs registering their types. */
  private seed(): void {
    const crdType = this.catalogue.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
    this.store.subscribe(crdType.storageKey, (e) => {
      const name = String(e.object.metadata.name);
      if (e.type === 'DELETED') {
        const old = this.catalogue.all().find((t) => t.crd === name);
        this.catalogue.removeCrd(name);
        if (old) this.store.dropAll(old.storageKey);
      } else this.catalogue.setCrdTypes(name, typesFromCrd(e.object));
    });
    const nsType = this.catalogue.find('', 'v1', 'namespaces')!;
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      this.store.insert(nsType, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const info = requestInfo(req.method ?? 'GET', url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const user = this.auth.authenticate(req.headers.authorization);
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      verb: info.verb,
      group: info.group,
      resource: info.resource,
      ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
      ...(info.name !== undefined ? { name: info.name } : {}),
      ...(info.subresource !== undefined ? { subresource: info.subresource } : {}),
      user: user?.name ?? 'system:anonymous',
    };
    this.requests.add(record);
    const warnings: string[] = [];
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      record.servedMs = performance.now() - arrived;
      if (res.destroyed) return;
      const h: Record<string, string | string[]> = { 'content-type': 'application/json', ...headers };
      if (warnings.length > 0) h['warning'] = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
      res.writeHead(status, h);
      res.end(req.method === 'HEAD' ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload));
    };
    const ctx: Ctx = {
      store: this.store,
      catalogue: this.catalogue,
      snapshots: this.snapshots,
      info,
      query: url.searchParams,
      contentType: req.headers['content-type'] ?? 'application/json',
      accept: req.headers.accept ?? '',
      body,
      warnings,
    };
    // Validated before faults and authorization so that every request is checked, but answered
    // in kube's order (authn, authz, APF, then the handler's option validation).
    const refusal = info.isResource ? preflight(ctx, this.catalogue) : undefined;
    if (refusal) this.contract.add(record, refusal);
    try {
      if (!user) throw unauthorized();
      if (this.flowControl && info.verb !== 'watch') {
        const release = await this.flowControl.admit(record.user);
        if (!release) {
          const apf = apfTooManyRequests(this.flowControl.retryAfterSeconds);
          send(apf.status, apf.body, apf.headers);
          return;
        }
        res.once('close', release);
      }
      for (const rule of this.faults.take(record)) {
        if (rule.before) await rule.before(record);
        if (rule.latencyMs) await sleep(rule.latencyMs);
        if (rule.dropConnection) {
          record.status = 0;
          req.socket.destroy();
          return;
        }
        // kube's 429s that reach the job come from API Priority and Fairness (or max-in-flight):
        // plain text, never a Status, so a rule's reason and message do not apply.
        if (rule.status === 429) {
          const apf = apfTooManyRequests(rule.retryAfterSeconds);
          send(apf.status, apf.body, apf.headers);
          return;
        }
        if (rule.status !== undefined) {
          throw fromCode(rule.status, rule.reason, rule.message, info.isResource ? { name: info.name ?? '', group: info.group, kind: info.resource } : {}, rule.retryAfterSeconds);
        }
      }
      this.authorize(user, info);
      if (refusal) throw refusal;
      if (info.isResource && info.verb === 'watch') {
        const type = resolveType(this.catalogue, info);
        record.status = 200;
        serveWatch(ctx, type, res, (cb) => {
          this.closers.add(cb);
          res.on('close', () => this.closers.delete(cb));
        });
        return;
      }
      if (info.isResource && info.group === '' && info.resource === 'pods' && info.subresource === 'log' && info.verb === 'get') {
        record.status = 200;
        const pod = this.store.get(this.catalogue.find('', 'v1', 'pods')!, info.namespace, info.name!);
        servePodLog(pod, info.name!, url.searchParams, this.podLogSource, res, (cb) => this.closers.add(cb));
        return;
      }
      const reply = this.route(ctx, url, req.headers.host ?? '127.0.0.1');
      send(reply.status, reply.body);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', `Internal error occurred: ${(e as Error).message}`);
      if (!(e instanceof ApiError)) console.error('test apiserver: internal error', e);
      // a shape refusal the preflight could not see (e.g. a malformed patch body)
      if (err.contract && err !== refusal) this.contract.add(record, err);
      send(err.code, err.toStatus(), err.headers);
    }
  }

  private authorize(user: UserInfo, info: ReturnType<typeof requestInfo>): void {
    if (this.auth.isAdmin(user)) return;
    const attrs: Attributes = {
      user,
      verb: info.verb,
      isResource: info.isResource,
      group: info.group,
      resource: info.resource,
      path: info.path,
      ...(info.subresource !== undefined ? { subresource: info.subresource } : {}),
      ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
      ...(info.name !== undefined ? { name: info.name } : {}),
    };
    const decision = this.authorizer.authorize(attrs);
    if (decision.allowed) return;
    const why = decision.reason ? `${forbiddenMessage(attrs)}: ${decision.reason}` : forbiddenMessage(attrs);
    const message = info.isResource ? `${qualified(info.resource, info.group)}${info.name ? ` "${info.name}"` : ''} is forbidden: ${why}` : why;
    throw new ApiError(403, 'Forbidden', message, info.isResource ? { name: info.name ?? '', group: info.group, kind: info.resource } : {});
  }

  private route(ctx: Ctx, url: URL, host: string): Reply {
    const { info } = ctx;
    if (!info.isResource) {
      if (ctx.info.verb !== 'get' && ctx.info.verb !== 'head') throw methodNotAllowed();
      if (['/healthz', '/livez', '/readyz'].includes(url.pathname)) return { status: 200, body: 'ok' };
      const doc = discovery(this.catalogue, url.pathname, host) ?? openapi(this.catalogue, url.pathname);
      if (doc === undefined) throw notFoundPath();
      return { status: 200, body: doc };
    }
    const type = resolveType(this.catalogue, info);
    switch (info.verb) {
      case 'get':
        return get(ctx, type);
      case 'list':
        return list(ctx, type);
      case 'create':
        return create(ctx, type);
      case 'update':
        return update(ctx, type);
      case 'patch':
        return patch(ctx, type);
      case 'delete':
        return del(ctx, type);
      case 'deletecollection':
        return deleteCollection(ctx, type);
      default:
        throw methodNotAllowed();
    }
  }

  /** Seeds an object directly (tests); the same rules as a create by the admin. */
  objectCount(): number {
    let n = 0;
    for (const t of this.catalogue.all()) n += this.store.list(t).length;
    return n;
  }
}

export type { KubeObject };
