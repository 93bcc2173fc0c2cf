// Plan: read each candidate's manifest once, check it is a Fleet artifact, and judge its age
// against the grace period. Fleet pushes an artifact before it writes the Bundle, so a young
// artifact, or one whose age cannot be told, is kept.
import pLimit from 'p-limit';
import type { Logger } from '../log.ts';
import type { Candidate } from './candidates.ts';
import { CREATED_ANNOTATION, RegistryError } from './registry/index.ts';
import type { RegistryPool } from './registries.ts';

export const FLEET_ARTIFACT_TYPE = 'application/fleet.manifest';

export interface Age {
  /** undefined: unknown. */
  ms: number | undefined;
  source: 'annotation' | 'secret' | 'unknown';
  /** When it was made, as read (RFC 3339). */
  created?: string;
}

export type KeepReason = 'young' | 'age-unknown' | 'not-fleet-artifact' | 'registry-down' | 'read-error' | 'budget';

export type Judgement =
  /** Delete the manifest `digest` (what `latest` pointed at when judged), then the secrets. */
  | { action: 'delete'; candidate: Candidate; digest: string; age: Age; reason: string }
  /** The artifact is gone already: only its secrets remain to delete. */
  | { action: 'secrets-only'; candidate: Candidate; age: Age; reason: string }
  | { action: 'keep'; candidate: Candidate; why: KeepReason; detail?: string }
  /** A repository left in the catalog with no `latest` (distribution keeps them after a delete): nothing there. */
  | { action: 'ignore'; candidate: Candidate };

export interface PlanOptions {
  minAgeMs: number;
  now: () => Date;
  logger: Logger;
  budget: AbortSignal;
  concurrency: number;
}

/** Judges every candidate; the result keeps the candidates' order. */
export async function judgeCandidates(candidates: Iterable<Candidate>, pool: RegistryPool, options: PlanOptions): Promise<Judgement[]> {
  const limit = pLimit(options.concurrency);
  return Promise.all([...candidates].map((c) => limit(() => judge(c, pool, options))));
}

async function judge(candidate: Candidate, pool: RegistryPool, options: PlanOptions): Promise<Judgement> {
  const { contentsId: id, registry } = candidate;
  if (options.budget.aborted) return { action: 'keep', candidate, why: 'budget' };
  if (pool.down(registry)) return { action: 'keep', candidate, why: 'registry-down' };
  let got: { digest: string; manifest: any } | null;
  try {
    got = await pool.client(registry).manifest(id, 'latest');
  } catch (err) {
    if (err instanceof RegistryError && err.kind === 'not-found') got = null;
    else if (pool.fail(registry, err)) return { action: 'keep', candidate, why: 'registry-down' };
    else {
      const detail = err instanceof Error ? err.message : String(err);
      options.logger.warn({ registry: pool.reference(registry), contentsId: id }, `cannot read artifact ${id}: ${detail}; kept`);
      return { action: 'keep', candidate, why: 'read-error', detail };
    }
  }
  if (!got) {
    if (candidate.origin === 'catalog') return { action: 'ignore', candidate };
    const age = secretAge(candidate, options.now());
    const keep = tooYoung(age, options.minAgeMs);
    if (keep) return { action: 'keep', candidate, why: keep };
    return { action: 'secrets-only', candidate, age, reason: 'the artifact is gone from the registry and no Bundle or BundleDeployment uses it' };
  }
  if (!isFleetArtifact(got.manifest, id)) {
    options.logger.info({ registry: pool.reference(registry), contentsId: id, digest: got.digest }, `${id} is not a Fleet artifact (no ${FLEET_ARTIFACT_TYPE} artifactType, no layer with id ${id}); kept`);
    return { action: 'keep', candidate, why: 'not-fleet-artifact' };
  }
  const age = artifactAge(got.manifest, candidate, options.now());
  const keep = tooYoung(age, options.minAgeMs);
  if (keep) return { action: 'keep', candidate, why: keep };
  return { action: 'delete', candidate, digest: got.digest, age, reason: staleReason(candidate) };
}

function staleReason(candidate: Candidate): string {
  if (candidate.origin === 'catalog') return 'orphan: no Bundle, BundleDeployment or secret names it';
  const n = candidate.secrets.length;
  return `no Bundle or BundleDeployment uses it (${n} secret${n === 1 ? '' : 's'} name it)`;
}

/** Fleet's mark on its artifacts (fleet-reference §2): the artifactType, or a layer whose `id` is the contents id. */
export function isFleetArtifact(manifest: any, contentsId: string): boolean {
  if (manifest?.artifactType === FLEET_ARTIFACT_TYPE) return true;
  const layers: unknown = manifest?.layers;
  return Array.isArray(layers) && layers.some((l: any) => l?.annotations?.id === contentsId);
}

/** From the `created` annotation; else from the oldest of its secrets (the artifact predates them). */
export function artifactAge(manifest: any, candidate: Candidate, now: Date): Age {
  const value: unknown = manifest?.annotations?.[CREATED_ANNOTATION];
  if (typeof value === 'string') {
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return { ms: now.getTime() - at, source: 'annotation', created: value };
  }
  return secretAge(candidate, now);
}

function secretAge(candidate: Candidate, now: Date): Age {
  const times = candidate.secrets.map((s) => s.createdAt).filter((t): t is number => t !== undefined);
  if (times.length === 0) return { ms: undefined, source: 'unknown' };
  const oldest = Math.min(...times);
  return { ms: now.getTime() - oldest, source: 'secret', created: new Date(oldest).toISOString() };
}

function tooYoung(age: Age, minAgeMs: number): KeepReason | undefined {
  if (age.ms === undefined) return minAgeMs > 0 ? 'age-unknown' : undefined;
  return age.ms < minAgeMs ? 'young' : undefined;
}

export interface BrakeInput {
  /** Artifacts the plan deletes. */
  planned: number;
  /** All Fleet artifacts known: in use, plus every candidate that exists. */
  known: number;
  /** Distinct contents ids in use that are stored in OCI. */
  inUse: number;
  ratio: number;
  min: number;
}

/** Why the plan looks like a mistake rather than garbage; undefined when it does not. */
export function brakeCause(b: BrakeInput): string | undefined {
  if (b.planned === 0) return undefined;
  if (b.inUse === 0) {
    return `mass-delete brake: nothing uses OCI storage but ${b.planned} artifact${b.planned === 1 ? '' : 's'} would be deleted; nothing deleted (pass --allow-mass-delete if that is right)`;
  }
  if (b.planned > b.ratio * b.known && b.planned > b.min) {
    const pct = Math.round((100 * b.planned) / b.known);
    return `mass-delete brake: ${b.planned} of ${b.known} known Fleet artifacts (${pct}%) would be deleted, more than ${Math.round(b.ratio * 100)}% and more than ${b.min}; nothing deleted (pass --allow-mass-delete if that is right)`;
  }
  return undefined;
}

/** `3d4h`, `25m`, `12s`: an age as a person reads it in an audit line. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined) return 'unknown';
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d${h ? `${h}h` : ''}`;
  if (h > 0) return `${h}h${m ? `${m}m` : ''}`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}
