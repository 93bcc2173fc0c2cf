// The registries one run talks to: one client per distinct connection (registryKey), and a
// registry-wide failure (down, refused credentials, deletes disabled) remembered so that its
// other artifacts are kept with one line for the registry, not one line per artifact.
import type { Logger } from '../log.ts';
import { RegistryClient, RegistryError } from './registry/index.ts';
import { registryKey, type RegistryConnection } from './storage-secret.ts';

export interface RegistryPoolOptions {
  timeoutMs: number;
  retries: number;
  backoffBaseMs?: number;
  /** Ask token servers for delete rights up front (off in a dry run). */
  wantDelete: boolean;
  logger: Logger;
  /** The run's stop: registry reads in flight are aborted at once. */
  signal?: AbortSignal;
  /** Artifacts read or deleted at once (`--registry-concurrency`): so many connections per registry client and origin. */
  concurrency: number;
}

/** Failures that will not get better for the next artifact of the same registry in this run. */
const REGISTRY_WIDE = new Set<RegistryError['kind']>(['unauthorized', 'forbidden', 'delete-disabled', 'tls', 'unreachable', 'timeout', 'server']);

export function isRegistryWide(err: unknown): err is RegistryError {
  return err instanceof RegistryError && REGISTRY_WIDE.has(err.kind);
}

interface Entry {
  conn: RegistryConnection;
  client?: RegistryClient;
  down?: RegistryError;
  /** Artifacts of this registry kept because it is down. */
  keptForFailure: number;
}

export class RegistryPool {
  readonly #options: RegistryPoolOptions;
  readonly #entries = new Map<string, Entry>();
  /** Requests of clients already closed (a client's count dies with it otherwise). */
  #closedRequests = 0;
  #closedConnections = 0;

  constructor(options: RegistryPoolOptions) {
    this.#options = options;
  }

  /** Registers a connection; returns its key. The first connection seen for a key is the one used. */
  add(conn: RegistryConnection): string {
    const key = registryKey(conn);
    if (!this.#entries.has(key)) this.#entries.set(key, { conn, keptForFailure: 0 });
    return key;
  }

  connection(key: string): RegistryConnection {
    return this.#entry(key).conn;
  }

  /** The registry as a person names it: its reference (host[:port]/prefix). */
  reference(key: string): string {
    return this.#entry(key).conn.reference;
  }

  client(key: string): RegistryClient {
    const entry = this.#entry(key);
    const { timeoutMs, retries, backoffBaseMs, wantDelete, logger, signal, concurrency } = this.#options;
    entry.client ??= new RegistryClient(entry.conn, {
      timeoutMs, retries, wantDelete, logger, connections: concurrency, ...(backoffBaseMs !== undefined ? { backoffBaseMs } : {}), ...(signal ? { signal } : {}),
    });
    return entry.client;
  }

  /** The failure that took this registry out of the run, if any. */
  down(key: string): RegistryError | undefined {
    return this.#entry(key).down;
  }

  /** Records a registry-wide failure (one warning line, the first time); false for per-artifact ones. */
  fail(key: string, err: unknown): boolean {
    if (!isRegistryWide(err)) return false;
    const entry = this.#entry(key);
    if (!entry.down) {
      entry.down = err;
      this.#options.logger.warn({ registry: entry.conn.reference, kind: err.kind }, `${err.message}; its artifacts and their secrets are kept this run`);
    }
    return true;
  }

  /** Counts an artifact kept because its registry is down (for the cause line). */
  keptForFailure(key: string): void {
    this.#entry(key).keptForFailure++;
  }

  /** One line per registry that went down, with how many artifacts it kept. */
  failures(): string[] {
    const out: string[] = [];
    for (const entry of this.#entries.values()) {
      if (!entry.down) continue;
      out.push(`${entry.down.message} (${entry.keptForFailure} artifact${entry.keptForFailure === 1 ? '' : 's'} kept)`);
    }
    return out;
  }

  /** HTTP requests sent to registries and token servers, retries included. */
  get requestCount(): number {
    let n = this.#closedRequests;
    for (const entry of this.#entries.values()) n += entry.client?.requestCount ?? 0;
    return n;
  }

  /** Connections opened to registries and token servers. */
  get connectionCount(): number {
    let n = this.#closedConnections;
    for (const entry of this.#entries.values()) n += entry.client?.connectionCount ?? 0;
    return n;
  }

  async close(): Promise<void> {
    for (const entry of this.#entries.values()) {
      if (!entry.client) continue;
      this.#closedRequests += entry.client.requestCount;
      this.#closedConnections += entry.client.connectionCount;
      const client = entry.client;
      delete entry.client;
      await client.close().catch(() => undefined);
    }
  }

  #entry(key: string): Entry {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`internal: unknown registry key ${key}`);
    return entry;
  }
}
