// The whole "may this OCI artifact or Secret go?" in one pure file: the OCI counterpart of
// src/gitjobs/select.ts. Every rule that decides a deletion lives here, without I/O, so that
// the tests and the mutation run (npm run mutation) guard each one. The rest of src/oci only
// gathers facts and calls these.
import type { V1Secret } from '@kubernetes/client-node';

export const OCI_STORAGE_SECRET_TYPE = 'fleet.cattle.io/bundle-oci-storage/v1alpha1';
export const FLEET_ARTIFACT_TYPE = 'application/fleet.manifest';
/** Fleet puts it, with value "true", on its per-bundle copies of the connection (fleet-reference §4). */
export const BUNDLE_SECRET_LABEL = 'fleet.cattle.io/bundle-internal-secret';
export const FLEET_GROUP = 'fleet.cattle.io';
const OWNER_KINDS: ReadonlySet<string> = new Set(['Bundle', 'BundleDeployment']);

/** A Bundle's `spec.contentsId`: `s-` + the manifest's sha256 hex, cut to 63 characters. */
export function isContentsId(name: unknown): name is string {
  return typeof name === 'string' && /^s-[0-9a-f]{61}$/.test(name);
}

/** The prefix of a deployment id `<contentsId>:<options hash>`; undefined when empty. */
export function contentsIdOfDeployment(deploymentId: unknown): string | undefined {
  if (typeof deploymentId !== 'string') return undefined;
  const colon = deploymentId.indexOf(':');
  const id = colon < 0 ? deploymentId : deploymentId.slice(0, colon);
  return id === '' ? undefined : id;
}

/**
 * Fleet's mark on its artifacts (fleet-reference §2), both parts: the artifactType, and a layer
 * whose `id` annotation is the repository's contents id (a layer naming another id: not ours).
 */
export function isFleetArtifact(manifest: unknown, contentsId: string): boolean {
  const m = manifest as { artifactType?: unknown; layers?: unknown } | null | undefined;
  if (m?.artifactType !== FLEET_ARTIFACT_TYPE) return false;
  if (!Array.isArray(m.layers)) return false;
  const ids = m.layers.map((l: { annotations?: { id?: unknown } } | null): unknown => l?.annotations?.id).filter((id) => id !== undefined);
  return ids.length > 0 && ids.every((id) => id === contentsId);
}

export interface Age {
  /** undefined: unknown. */
  ms: number | undefined;
  source: 'annotation' | 'secret' | 'unknown';
  /** When it was made, as read (RFC 3339). */
  created?: string;
}

/**
 * The age of an artifact: from its `created` annotation (epoch ms, already parsed strictly),
 * else from the oldest of its secrets (the artifact predates them), else unknown.
 */
export function ageOf(annotated: { at: number; text: string } | undefined, secretsCreatedAt: readonly (number | undefined)[], now: number): Age {
  if (annotated !== undefined) return { ms: now - annotated.at, source: 'annotation', created: annotated.text };
  const times = secretsCreatedAt.filter((t): t is number => t !== undefined);
  if (times.length === 0) return { ms: undefined, source: 'unknown' };
  const oldest = Math.min(...times);
  return { ms: now - oldest, source: 'secret', created: new Date(oldest).toISOString() };
}

/**
 * The grace period. Fleet pushes an artifact before it writes the Bundle, so an artifact younger
 * than `minAgeMs` is kept; one exactly `minAgeMs` old may go. An unknown age is kept unless the
 * minimum is 0.
 */
export function graceKeeps(age: Age, minAgeMs: number): 'young' | 'age-unknown' | undefined {
  if (age.ms === undefined) return minAgeMs > 0 ? 'age-unknown' : undefined;
  return age.ms < minAgeMs ? 'young' : undefined;
}

export interface BrakeInput {
  /**
   * Stale artifacts the plan acts on: those it deletes, and those already missing from the
   * registry whose secrets it deletes (a registry answering 404 for everything must not strip
   * every secret unbraked).
   */
  planned: number;
  /** Of `planned`, the ones missing from the registry. */
  missing?: number;
  /** All Fleet artifacts known: in use, plus every candidate that exists or has secrets. */
  known: number;
  /** Distinct contents ids in use that are stored in OCI. */
  inUse: number;
  ratio: number;
  min: number;
}

/** The mass-delete brake: why the plan looks like a mistake rather than garbage; undefined when it does not. */
export function brakeCause(b: BrakeInput): string | undefined {
  if (b.planned === 0) return undefined;
  const missing = b.missing ? ` (${b.missing} of them already missing from the registry, only their secrets left)` : '';
  const advice = 'nothing deleted (pass --allow-mass-delete if that is right)';
  if (b.inUse === 0) return `mass-delete brake: nothing uses OCI storage but ${b.planned} artifact${b.planned === 1 ? '' : 's'}${missing} would be deleted; ${advice}`;
  if (b.planned > b.ratio * b.known && b.planned > b.min) {
    const pct = Math.round((100 * b.planned) / b.known);
    return `mass-delete brake: ${b.planned} of ${b.known} known Fleet artifacts (${pct}%) would be deleted${missing}, more than ${Math.round(b.ratio * 100)}% and more than ${b.min}; ${advice}`;
  }
  return undefined;
}

/** The ids Bundles and BundleDeployments name: a Bundle's contentsId, a BundleDeployment's deployed and staged ids. */
export function idsNamedBy(kind: 'Bundle' | 'BundleDeployment', spec: { contentsId?: unknown; deploymentID?: unknown; stagedDeploymentID?: unknown } | undefined): string[] {
  if (kind === 'Bundle') return typeof spec?.contentsId === 'string' && spec.contentsId !== '' ? [spec.contentsId] : [];
  return [spec?.deploymentID, spec?.stagedDeploymentID].map(contentsIdOfDeployment).filter((id): id is string => id !== undefined);
}

/**
 * The remit: a Secret is Fleet's per-bundle storage, and may be deleted with its artifact, only
 * when its type, its contents-id name, Fleet's label and a Fleet owner (a Bundle, or for the
 * clones a BundleDeployment) all hold. Users' connection Secrets share the type and lack the
 * rest. Undefined when it is in the remit, else why not.
 */
export function outsideRemit(secret: V1Secret): string | undefined {
  if (secret.type !== OCI_STORAGE_SECRET_TYPE) return `its type is not ${OCI_STORAGE_SECRET_TYPE}`;
  const meta = secret.metadata;
  if (!isContentsId(meta?.name)) return 'its name is not a contents id';
  if (meta?.labels?.[BUNDLE_SECRET_LABEL] !== 'true') return `it lacks Fleet's label ${BUNDLE_SECRET_LABEL}: "true"`;
  const owned = (meta.ownerReferences ?? []).some((o) => OWNER_KINDS.has(o.kind) && o.apiVersion.startsWith(`${FLEET_GROUP}/`));
  if (!owned) return 'it has no ownerReference to a Bundle or BundleDeployment';
  return undefined;
}

/**
 * Why a Secret's `reference` (host[:port]/path, no scheme) cannot be used, or undefined. Only
 * plain path segments pass: URL normalisation would resolve `..` and `.` to a repository outside
 * the prefix, and a query, fragment, userinfo or empty segment has no place in a repository name.
 */
export function referenceProblem(reference: string): string | undefined {
  if (reference === '') return 'is missing or empty';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(reference)) return 'must not contain a scheme (write host[:port]/path; use basicHTTP for plain http)';
  if (/\s/.test(reference)) return 'must not contain whitespace';
  if (reference.includes('?')) return 'must not contain a query (?)';
  if (reference.includes('#')) return 'must not contain a fragment (#)';
  if (reference.includes('\\')) return 'must not contain a backslash';
  const slash = reference.indexOf('/');
  const host = slash < 0 ? reference : reference.slice(0, slash);
  if (host.includes('@')) return 'must not contain userinfo (user@host): credentials belong in username and password';
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host)) return 'does not start with a valid host[:port]';
  if (slash < 0) return undefined;
  const segments = reference.slice(slash + 1).replace(/\/+$/, '').split('/');
  if (segments.length === 1 && segments[0] === '') return undefined;
  for (const segment of segments) {
    if (segment === '') return 'has an empty path segment';
    if (segment === '.' || segment === '..') return `has a "${segment}" path segment`;
    if (/%2e|%2f/i.test(segment)) return 'has an encoded "." or "/" in a path segment';
  }
  return undefined;
}

/** What the sweep knows right before a mutating request for one artifact or Secret. */
export interface DeleteFacts {
  /** The run stopped (budget, signal, lock lost or past its deadline, another item's failure). */
  stopped: boolean;
  /** The current in-use view names the id. */
  inUse: boolean;
  /** For a manifest: the digest the plan judged (computed from the bytes read). */
  judgedDigest?: string;
  /** For a manifest: what `latest` points at now; null when gone. */
  currentDigest?: string | null;
}

export type DeleteNow = { go: true } | { go: false; why: 'stopped' | 'in-use' | 'changed' | 'gone' };

/** May this delete be sent now? Every condition must hold at once; the order only picks the reason. */
export function mayDeleteNow(f: DeleteFacts): DeleteNow {
  if (f.stopped) return { go: false, why: 'stopped' };
  if (f.inUse) return { go: false, why: 'in-use' };
  if (f.judgedDigest !== undefined) {
    if (f.currentDigest === null || f.currentDigest === undefined) return { go: false, why: 'gone' };
    if (f.currentDigest !== f.judgedDigest) return { go: false, why: 'changed' };
  }
  return { go: true };
}
