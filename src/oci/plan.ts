// Plan: read each candidate's manifest once, check it is a Fleet artifact, and judge its age
// against the grace period. Fleet pushes an artifact before it writes the Bundle, so a young
// artifact, or one whose age cannot be told, is kept.
import pLimit from 'p-limit';
import type { Logger } from '../log.ts';
import type { Candidate } from './candidates.ts';
import { CREATED_ANNOTATION, parseRfc3339, RegistryError } from './registry/index.ts';
import type { RegistryPool } from './registries.ts';
import { messageOf } from '../error-text.ts';

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
      const detail = messageOf(err);
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
    options.logger.info({ registry: pool.reference(registry), contentsId: id, digest: got.digest }, `${id} is not a Fleet artifact (it needs artifactType ${FLEET_ARTIFACT_TYPE} and a layer annotated id ${id}, none naming another id); kept`);
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

/**
 * Fleet's mark on its artifacts (fleet-reference §2), both parts: the artifactType, and a layer
 * whose `id` annotation is the repository's contents id (a layer naming another id: not ours).
 */
export function isFleetArtifact(manifest: any, contentsId: string): boolean {
  if (manifest?.artifactType !== FLEET_ARTIFACT_TYPE) return false;
  const layers: unknown = manifest?.layers;
  if (!Array.isArray(layers)) return false;
  const ids = layers.map((l: any): unknown => l?.annotations?.id).filter((id) => id !== undefined);
  return ids.length > 0 && ids.every((id) => id === contentsId);
}

/** From the `created` annotation; else from the oldest of its secrets (the artifact predates them). */
export function artifactAge(manifest: any, candidate: Candidate, now: Date): Age {
  const value: unknown = manifest?.annotations?.[CREATED_ANNOTATION];
  const at = typeof value === 'string' ? parseRfc3339(value) : undefined;
  if (at !== undefined) return { ms: now.getTime() - at, source: 'annotation', created: value as string };
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

/** Why the plan looks like a mistake rather than garbage; undefined when it does not. */
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

