// The pure parts of the OCI phase: deployment ids, the brake's arithmetic at its edges, what
// counts as a Fleet artifact and how its age is read, and the "any OCI storage secret?" probe
// over odd list pages.
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeAccess } from '../../src/kube/access.ts';
import type { ListPage } from '../../src/kube/pager.ts';
import { anyStorageSecret, collectSecretCandidates, type Candidate } from '../../src/oci/candidates.ts';
import { RegistryPool } from '../../src/oci/registries.ts';
import { InUseSet } from '../../src/oci/mark.ts';
import { artifactAge } from '../../src/oci/plan.ts';
import { CREATED_ANNOTATION } from '../../src/oci/registry/index.ts';
import { brakeCause, contentsIdOfDeployment, isFleetArtifact } from '../../src/oci/rules.ts';
import { captureLogs } from '../fixtures/kube.ts';

const ID = `s-${'a'.repeat(61)}`;

describe('in-use ids', () => {
  it('takes a deployment id up to the colon', () => {
    expect(contentsIdOfDeployment(`${ID}:${'f'.repeat(64)}`)).toBe(ID);
    expect(contentsIdOfDeployment(ID)).toBe(ID);
    expect(contentsIdOfDeployment('')).toBeUndefined();
    expect(contentsIdOfDeployment(undefined)).toBeUndefined();
  });

  it('counts each OCI id once, however many objects name it', () => {
    const set = new InUseSet();
    set.add(ID, false);
    set.add(ID, true);
    set.add(ID, true);
    set.add('s-other', false);
    expect(set.ociCount).toBe(1);
    expect(set.size).toBe(2);
  });
});

describe('mass-delete brake', () => {
  const base = { ratio: 0.5, min: 5 };
  it('needs both: more than the share and more than the minimum', () => {
    expect(brakeCause({ ...base, planned: 6, known: 12, inUse: 6 })).toBeUndefined();
    expect(brakeCause({ ...base, planned: 5, known: 6, inUse: 1 })).toBeUndefined();
    expect(brakeCause({ ...base, planned: 7, known: 12, inUse: 5 })).toMatch(/7 of 12 known Fleet artifacts \(58%\).*--allow-mass-delete/);
  });

  it('stops any deletion when nothing is in use, and nothing when nothing is planned', () => {
    expect(brakeCause({ ...base, planned: 1, known: 1, inUse: 0 })).toMatch(/nothing uses OCI storage/);
    expect(brakeCause({ ...base, planned: 0, known: 9, inUse: 0 })).toBeUndefined();
  });
});

describe('mass-delete brake with artifacts missing from the registry', () => {
  it('counts secrets-only deletions like artifacts, in the share and when nothing is in use', () => {
    expect(brakeCause({ ratio: 0.5, min: 5, planned: 6, missing: 6, known: 8, inUse: 2 })).toMatch(/6 of 8 known Fleet artifacts \(75%\).*6 of them already missing from the registry/);
    expect(brakeCause({ ratio: 0.5, min: 5, planned: 1, missing: 1, known: 1, inUse: 0 })).toMatch(/nothing uses OCI storage but 1 artifact \(1 of them already missing/);
  });
});

describe('Fleet artifact check', () => {
  const layer = (id: string | undefined) => ({ mediaType: 'application/fleet.file', digest: 'sha256:00', size: 1, ...(id === undefined ? {} : { annotations: { id } }) });
  const manifest = (artifactType: string | undefined, ...layers: object[]) => ({ schemaVersion: 2, ...(artifactType ? { artifactType } : {}), layers });
  const OTHER = `s-${'b'.repeat(61)}`;
  it.each([
    ['artifactType and a layer naming the id', manifest('application/fleet.manifest', layer(ID)), true],
    ['artifactType, but the layer names another contents id', manifest('application/fleet.manifest', layer(OTHER)), false],
    ['artifactType, one layer naming the id and one naming another', manifest('application/fleet.manifest', layer(ID), layer(OTHER)), false],
    ['artifactType, no layer id at all', manifest('application/fleet.manifest', layer(undefined)), false],
    ['artifactType, no layers', { artifactType: 'application/fleet.manifest' }, false],
    ['a layer naming the id, no artifactType', manifest(undefined, layer(ID)), false],
    ['a layer naming the id, another artifactType', manifest('application/vnd.example+json', layer(ID)), false],
    ['not a manifest', null, false],
  ])('%s: %s', (_what, m, fleet) => {
    expect(isFleetArtifact(m, ID)).toBe(fleet);
  });
});

describe('artifact age from the created annotation', () => {
  const now = new Date('2025-06-01T12:00:00Z');
  const orphan: Candidate = { contentsId: ID, registry: 'r', secrets: [], origin: 'catalog' };
  const ageOf = (created: string) => artifactAge({ annotations: { [CREATED_ANNOTATION]: created } }, orphan, now);
  it.each([
    ['2025-06-01T11:31:00Z', 29 * 60_000],
    ['2025-06-01T11:31:00.5Z', 29 * 60_000 - 500],
    ['2025-06-01T11:31:00.123456789Z', 29 * 60_000 - 123],
    ['2025-06-01t11:31:00z', 29 * 60_000],
    ['2025-06-01T20:31:00+09:00', 29 * 60_000],
    ['2025-06-01T06:01:00-05:30', 29 * 60_000],
    ['2025-05-30T12:00:00+00:00', 2 * 86_400_000],
  ])('%s is read with its zone', (created, ms) => {
    expect(ageOf(created)).toEqual({ ms, source: 'annotation', created });
  });
  it.each([
    '2025-06-01T11:31:00', // no zone: Date.parse would take local time (Asia/Tokyo: 9 h older)
    '2025-06-01 11:31:00Z',
    '2025-06-01',
    '1',
    '12',
    '2025',
    'Sun, 01 Jun 2025 11:31:00 GMT',
    '2025-02-30T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '2025-06-01T24:00:00Z',
    '2025-06-01T11:31:00+0900',
    '2025-06-01T11:31:00.Z',
    '',
  ])('%j is not RFC 3339 with a zone: age unknown', (created) => {
    expect(ageOf(created)).toEqual({ ms: undefined, source: 'unknown' });
  });
});

describe('any OCI storage secret?', () => {
  const secret: V1Secret = { metadata: { namespace: 'fleet-default', name: 'ocistorage' }, type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1' };
  /** A KubeAccess whose secret list answers `pages` in turn; reading past them fails the test. */
  const serving = (pages: ListPage<V1Secret>[]) => {
    const tokens: (string | undefined)[] = [];
    const access = {
      call: (_op: unknown, fn: (o: object) => Promise<unknown>) => fn({}),
      core: {
        listSecretForAllNamespaces: async (req: { _continue?: string }) => {
          tokens.push(req._continue);
          const page = pages[tokens.length - 1];
          if (!page) throw new Error('listed past the last page');
          return page;
        },
      },
    } as unknown as KubeAccess;
    return { access, tokens };
  };
  const logger = captureLogs().logger;

  it('follows a continue token past an empty first page, and stops at the first secret', async () => {
    const { access, tokens } = serving([{ items: [], metadata: { _continue: 'one' } }, { items: [], metadata: { _continue: 'two' } }, { items: [secret], metadata: { _continue: 'three' } }]);
    expect(await anyStorageSecret(access, { logger })).toBe(true);
    expect(tokens).toEqual([undefined, 'one', 'two']);
  });

  it('is false only when the list ends without one', async () => {
    const { access, tokens } = serving([{ items: [], metadata: { _continue: 'one' } }, { items: [], metadata: {} }]);
    expect(await anyStorageSecret(access, { logger })).toBe(false);
    expect(tokens).toEqual([undefined, 'one']);
  });
});

describe('secret candidates', () => {
  const data = { reference: Buffer.from('registry.example.com/fleet').toString('base64') };
  const fleetSecret = (meta: V1Secret['metadata']): V1Secret => ({
    type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1', data,
    metadata: { name: ID, labels: { 'fleet.cattle.io/bundle-internal-secret': 'true' }, ownerReferences: [{ apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'Bundle', name: 'b', uid: 'bu' }], ...meta },
  });
  const listing = (items: V1Secret[]) =>
    ({ call: (_op: unknown, fn: (o: object) => Promise<unknown>) => fn({}), core: { listSecretForAllNamespaces: async () => ({ items, metadata: {} }) } }) as unknown as KubeAccess;

  it('a Secret without a uid or resourceVersion is never a candidate (its delete could not be conditional): its id is held', async () => {
    const logs = captureLogs();
    const pool = new RegistryPool({ timeoutMs: 1000, retries: 0, wantDelete: false, logger: logs.logger, concurrency: 4 });
    const access = listing([
      fleetSecret({ namespace: 'fleet-default', uid: 'u1', resourceVersion: '5' }),
      fleetSecret({ namespace: 'cluster-x', resourceVersion: '6' }),
      fleetSecret({ namespace: 'cluster-y', uid: 'u3' }),
    ]);

    const set = await collectSecretCandidates(access, new InUseSet(), pool, { pageSize: 10, logger: logs.logger });

    expect([...set.candidates.keys()]).toEqual([]);
    expect([...set.held]).toEqual([ID]);
    expect(set.secretsKept).toBe(3);
    expect(logs.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      `OCI storage secret cluster-x/${ID} is not Fleet's per-bundle storage (it has no uid or resourceVersion, so its delete could not be conditional); it, every secret of that name and its artifact are kept`,
      `OCI storage secret cluster-y/${ID} is not Fleet's per-bundle storage (it has no uid or resourceVersion, so its delete could not be conditional); it, every secret of that name and its artifact are kept`,
    ]);
    await pool.close();
  });

  it('with uid and resourceVersion, every copy is a candidate carrying them', async () => {
    const logs = captureLogs();
    const pool = new RegistryPool({ timeoutMs: 1000, retries: 0, wantDelete: false, logger: logs.logger, concurrency: 4 });
    const access = listing([fleetSecret({ namespace: 'fleet-default', uid: 'u1', resourceVersion: '5', creationTimestamp: new Date(1000) })]);
    const set = await collectSecretCandidates(access, new InUseSet(), pool, { pageSize: 10, logger: logs.logger });
    expect(set.candidates.get(ID)?.secrets).toEqual([{ object: { namespace: 'fleet-default', name: ID, uid: 'u1', resourceVersion: '5' }, createdAt: 1000 }]);
    await pool.close();
  });
});
