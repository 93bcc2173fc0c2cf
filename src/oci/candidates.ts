// Candidates: artifacts no Bundle or BundleDeployment uses. (a) From Fleet's per-bundle secrets
// (named by a contents id), each with every secret of that name. (b) Orphans: repositories
// directly under a connection secret's path prefix, named by a contents id nothing names.
// Only the candidates are kept; secret pages are dropped as soon as they are read.
import type { V1Secret } from '@kubernetes/client-node';
import type { KubeAccess } from '../kube/access.ts';
import { judged, type Judged } from '../kube/conditional-delete.ts';
import type { KubeOp } from '../kube/errors.ts';
import { listInPages } from '../kube/pager.ts';
import type { Logger } from '../log.ts';
import type { InUseSet } from './mark.ts';
import { RegistryError } from './registry/index.ts';
import type { RegistryPool } from './registries.ts';
import { isContentsId, OCI_STORAGE_SECRET_TYPE, outsideRemit } from './rules.ts';
import { parseStorageSecret, type RegistryConnection } from './storage-secret.ts';
import { messageOf } from '../error-text.ts';

/** A Secret as judged (its delete is conditional on it), and when it was made. */
export interface SecretRef {
  object: Judged;
  /** creationTimestamp, epoch ms. */
  createdAt?: number;
}

export interface Candidate {
  contentsId: string;
  /** RegistryPool key of the connection that reaches the artifact. */
  registry: string;
  /** Every OCI storage secret of that name, across namespaces; none for a catalog orphan. */
  secrets: SecretRef[];
  origin: 'secret' | 'catalog';
}

export interface CandidateSet {
  /** By contents id, in the order found. */
  candidates: Map<string, Candidate>;
  /** Ids named by a malformed or inconsistent secret: their secrets and artifact are kept. */
  held: Set<string>;
  /** The registries whose catalog is searched for orphans: pool key by storage reference (referenceKey). */
  catalogRegistries: Map<string, string>;
  /** Secrets named by a contents id that stay: in use, or held. */
  secretsKept: number;
}

const SECRET_SELECTOR = `type=${OCI_STORAGE_SECRET_TYPE}`;
const secretsOp: KubeOp = { verb: 'list', resource: 'secrets' };

export interface CollectOptions {
  pageSize: number;
  logger: Logger;
}

/**
 * Any OCI storage secret at all? Usually one small request, so clusters without OCI storage stop
 * here. A filtered list may answer an empty page with a continue token: pages are followed up
 * to the first secret or the end.
 */
export async function anyStorageSecret(access: KubeAccess, options: Pick<CollectOptions, 'logger'>): Promise<boolean> {
  for await (const _page of storageSecretPages(access, { pageSize: 1, logger: options.logger })) return true;
  return false;
}

function storageSecretPages(access: KubeAccess, options: CollectOptions): AsyncGenerator<V1Secret[]> {
  return listInPages<V1Secret>(access, secretsOp, (page, o) => access.core.listSecretForAllNamespaces({ fieldSelector: SECRET_SELECTOR, limit: page.limit, _continue: page._continue }, o), options);
}

/** Streams the OCI storage secrets of all namespaces; a failed list throws (nothing is swept then). */
export async function collectSecretCandidates(access: KubeAccess, inUse: InUseSet, pool: RegistryPool, options: CollectOptions): Promise<CandidateSet> {
  const { logger } = options;
  const set: CandidateSet = { candidates: new Map(), held: new Set(), catalogRegistries: new Map(), secretsKept: 0 };
  const heldSecrets = new Map<string, number>();
  // Every malformed secret gets its own line; the id is held from then on.
  const hold = (id: string, why: string) => {
    logger.warn({ contentsId: id }, why);
    set.held.add(id);
    heldSecrets.set(id, (heldSecrets.get(id) ?? 0) + 1);
  };

  for await (const page of storageSecretPages(access, options)) {
    for (const secret of page) {
      // The field selector narrows; the type is still checked here.
      if (secret.type !== OCI_STORAGE_SECRET_TYPE) continue;
      const name = secret.metadata?.name ?? '';
      const named = isContentsId(name);
      if (named && inUse.has(name)) {
        set.secretsKept++;
        continue;
      }
      let conn: RegistryConnection;
      try {
        conn = parseStorageSecret(secret);
      } catch (err) {
        const message = messageOf(err);
        if (named) hold(name, `${message}; it, every secret of that name and its artifact are kept`);
        else logger.warn({ secret: `${secret.metadata?.namespace}/${name}` }, `${message}; this connection is not used`);
        continue;
      }
      if (!named) {
        const key = pool.add(conn);
        const where = referenceKey(conn);
        if (!set.catalogRegistries.has(where)) set.catalogRegistries.set(where, key);
        continue;
      }
      // Named by a contents id: Fleet's per-bundle storage only when the remit holds in full.
      const outside = outsideRemit(secret);
      const ref = outside ? undefined : secretRef(secret);
      if (outside || !ref) {
        const why = outside ?? 'it has no uid or resourceVersion, so its delete could not be conditional';
        hold(name, `OCI storage secret ${secret.metadata?.namespace}/${name} is not Fleet's per-bundle storage (${why}); it, every secret of that name and its artifact are kept`);
        continue;
      }
      if (set.held.has(name)) {
        heldSecrets.set(name, (heldSecrets.get(name) ?? 0) + 1);
        continue;
      }
      const key = pool.add(conn);
      const existing = set.candidates.get(name);
      if (!existing) {
        set.candidates.set(name, { contentsId: name, registry: key, secrets: [ref], origin: 'secret' });
      } else if (referenceKey(pool.connection(existing.registry)) === referenceKey(conn)) {
        existing.secrets.push(ref);
      } else {
        // Copies of one connection that disagree on where the artifact lives: not ours to guess.
        set.candidates.delete(name);
        heldSecrets.set(name, existing.secrets.length);
        hold(name, `OCI storage secrets named ${name} point at different registries (${pool.reference(existing.registry)}, ${conn.reference}); they and the artifact are kept`);
      }
    }
  }
  for (const id of set.held) {
    const candidate = set.candidates.get(id);
    set.secretsKept += (heldSecrets.get(id) ?? 0) + (candidate?.secrets.length ?? 0);
    set.candidates.delete(id);
  }
  return set;
}

/** Registry, scheme and path prefix: two connections with equal keys reach the same repositories. */
function referenceKey(conn: RegistryConnection): string {
  return `${conn.basicHTTP ? 'http' : 'https'}://${conn.host.toLowerCase()}/${conn.pathPrefix}`;
}

function secretRef(secret: V1Secret): SecretRef | undefined {
  const object = judged(secret.metadata);
  if (!object) return undefined;
  const stamp = secret.metadata?.creationTimestamp;
  const created = stamp ? new Date(stamp).getTime() : Number.NaN;
  return { object, ...(Number.isNaN(created) ? {} : { createdAt: created }) };
}

/**
 * Catalog failures that only mean "no orphan search here": the secrets' artifacts still go on.
 * Not `unauthorized`: refused credentials fail every other request too (a registry that merely
 * withholds the catalog answers 403, or 401 insufficient_scope, which the client calls forbidden).
 */
const CATALOG_UNAVAILABLE = new Set<RegistryError['kind']>(['forbidden', 'unsupported', 'not-found', 'protocol']);

export interface CatalogOptions {
  pageSize: number;
  logger: Logger;
  budget: AbortSignal;
}

/**
 * Adds orphans: repositories directly under each connection's prefix whose name is a contents
 * id that no Bundle, BundleDeployment or secret names. A catalog that is forbidden or missing
 * is reported once per registry; an unreachable registry is taken out of the run. Returns
 * false when the budget stopped the search early.
 */
export async function addCatalogOrphans(pool: RegistryPool, set: CandidateSet, inUse: InUseSet, options: CatalogOptions): Promise<boolean> {
  for (const key of set.catalogRegistries.values()) {
    if (options.budget.aborted) return false;
    if (pool.down(key)) continue;
    try {
      for await (const names of pool.client(key).catalog(options.pageSize)) {
        for (const name of names) {
          // The client gives names relative to the prefix; a '/' means deeper than directly under it.
          if (!isContentsId(name) || inUse.has(name) || set.candidates.has(name) || set.held.has(name)) continue;
          set.candidates.set(name, { contentsId: name, registry: key, secrets: [], origin: 'catalog' });
        }
        if (options.budget.aborted) return false;
      }
    } catch (err) {
      if (err instanceof RegistryError && CATALOG_UNAVAILABLE.has(err.kind)) {
        options.logger.warn({ registry: pool.reference(key), kind: err.kind }, `${err.message}; orphans without a secret are not searched in this registry`);
        continue;
      }
      if (!pool.fail(key, err)) throw err;
    }
  }
  return true;
}
