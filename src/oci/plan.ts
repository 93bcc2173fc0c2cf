// Plan: read each candidate's manifest once, check it is a Fleet artifact, and judge its age
// against the grace period. Fleet pushes an artifact before it writes the Bundle, so a young
// artifact, or one whose age cannot be told, is kept.
import pLimit from 'p-limit';
import type { Logger } from '../log.ts';
import type { Candidate } from './candidates.ts';
import { CREATED_ANNOTATION, parseRfc3339, RegistryError } from './registry/index.ts';
import type { RegistryPool } from './registries.ts';
import { messageOf } from '../error-text.ts';
import { ageOf, FLEET_ARTIFACT_TYPE, graceKeeps, isFleetArtifact, type Age } from './rules.ts';

export type { Age } from './rules.ts';

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
    const age = ageOf(undefined, candidate.secrets.map((s) => s.createdAt), options.now().getTime());
    const keep = graceKeeps(age, options.minAgeMs);
    if (keep) return { action: 'keep', candidate, why: keep };
    return { action: 'secrets-only', candidate, age, reason: 'the artifact is gone from the registry and no Bundle or BundleDeployment uses it' };
  }
  if (!isFleetArtifact(got.manifest, id)) {
    options.logger.info({ registry: pool.reference(registry), contentsId: id, digest: got.digest }, `${id} is not a Fleet artifact (it needs artifactType ${FLEET_ARTIFACT_TYPE} and a layer annotated id ${id}, none naming another id); kept`);
    return { action: 'keep', candidate, why: 'not-fleet-artifact' };
  }
  const age = artifactAge(got.manifest, candidate, options.now());
  const keep = graceKeeps(age, options.minAgeMs);
  if (keep) return { action: 'keep', candidate, why: keep };
  return { action: 'delete', candidate, digest: got.digest, age, reason: staleReason(candidate) };
}

function staleReason(candidate: Candidate): string {
  if (candidate.origin === 'catalog') return 'orphan: no Bundle, BundleDeployment or secret names it';
  const n = candidate.secrets.length;
  return `no Bundle or BundleDeployment uses it (${n} secret${n === 1 ? '' : 's'} name it)`;
}

/** The age of a manifest read from the registry: its `created` annotation (strict RFC 3339), else its secrets'. */
export function artifactAge(manifest: any, candidate: Candidate, now: Date): Age {
  const value: unknown = manifest?.annotations?.[CREATED_ANNOTATION];
  const at = typeof value === 'string' ? parseRfc3339(value) : undefined;
  return ageOf(at === undefined ? undefined : { at, text: value as string }, candidate.secrets.map((s) => s.createdAt), now.getTime());
}
