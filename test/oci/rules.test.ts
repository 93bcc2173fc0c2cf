// Every OCI rule of src/oci/rules.ts at its edges: what a contents id is, Fleet's mark on an
// artifact, the grace period (strict <), the brake, what objects name, the remit of a Secret,
// the references refused, and whether a delete may go now. Fast and pure: `npm run mutation`
// runs these against every mutant of the rules.
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ageOf, brakeCause, contentsIdOfDeployment, graceKeeps, idsNamedBy, isContentsId, isFleetArtifact, mayDeleteNow, outsideRemit, referenceProblem,
} from '../../src/oci/rules.ts';

const ID = `s-${'a'.repeat(61)}`;
const OTHER = `s-${'b'.repeat(61)}`;

describe('contents ids', () => {
  it('is s- and exactly 61 lower-case hex digits', () => {
    expect(isContentsId(ID)).toBe(true);
    expect(isContentsId(`s-${'0123456789abcdef'.repeat(4).slice(0, 61)}`)).toBe(true);
    for (const bad of [`s-${'a'.repeat(60)}`, `s-${'a'.repeat(62)}`, `s-${'A'.repeat(61)}`, `x-${'a'.repeat(61)}`, ` ${ID}`, `${ID} `, `s-${'g'.repeat(61)}`, 'ocistorage', '', undefined, 42]) {
      expect(isContentsId(bad), String(bad)).toBe(false);
    }
  });

  it('takes a deployment id up to its first colon; an empty id is none', () => {
    expect(contentsIdOfDeployment(`${ID}:${'f'.repeat(64)}`)).toBe(ID);
    expect(contentsIdOfDeployment(`${ID}:a:b`)).toBe(ID);
    expect(contentsIdOfDeployment(ID)).toBe(ID);
    expect(contentsIdOfDeployment(':abc')).toBeUndefined();
    expect(contentsIdOfDeployment('')).toBeUndefined();
    expect(contentsIdOfDeployment(undefined)).toBeUndefined();
    expect(contentsIdOfDeployment(7)).toBeUndefined();
  });

  it('names what a Bundle and a BundleDeployment point at', () => {
    expect(idsNamedBy('Bundle', { contentsId: ID })).toEqual([ID]);
    expect(idsNamedBy('Bundle', { contentsId: '' })).toEqual([]);
    expect(idsNamedBy('Bundle', { contentsId: 3 })).toEqual([]);
    expect(idsNamedBy('Bundle', undefined)).toEqual([]);
    // A Bundle's deployment fields are not its own.
    expect(idsNamedBy('Bundle', { deploymentID: `${ID}:x` })).toEqual([]);
    expect(idsNamedBy('BundleDeployment', { deploymentID: `${ID}:x`, stagedDeploymentID: `${OTHER}:y` })).toEqual([ID, OTHER]);
    expect(idsNamedBy('BundleDeployment', { stagedDeploymentID: `${OTHER}:y` })).toEqual([OTHER]);
    expect(idsNamedBy('BundleDeployment', { deploymentID: ':helmop', contentsId: ID })).toEqual([]);
    expect(idsNamedBy('BundleDeployment', undefined)).toEqual([]);
  });
});

describe("Fleet's mark on an artifact", () => {
  const manifest = (fields: Record<string, unknown>) => ({ schemaVersion: 2, artifactType: 'application/fleet.manifest', layers: [{ annotations: { id: ID } }], ...fields });

  it('needs the artifactType and a layer annotated with the id, none naming another', () => {
    expect(isFleetArtifact(manifest({}), ID)).toBe(true);
    expect(isFleetArtifact(manifest({ layers: [{}, { annotations: { id: ID } }, { annotations: {} }] }), ID)).toBe(true);
    expect(isFleetArtifact(manifest({ artifactType: 'application/vnd.other' }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ artifactType: undefined }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: undefined }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: { id: ID } }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: [] }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: [{ annotations: {} }, null] }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: [{ annotations: { id: OTHER } }] }), ID)).toBe(false);
    expect(isFleetArtifact(manifest({ layers: [{ annotations: { id: ID } }, { annotations: { id: OTHER } }] }), ID)).toBe(false);
    expect(isFleetArtifact(null, ID)).toBe(false);
    expect(isFleetArtifact(undefined, ID)).toBe(false);
  });
});

describe('age and the grace period', () => {
  const now = 1_000_000_000;

  it('reads the annotation first, else the oldest secret, else unknown', () => {
    expect(ageOf({ at: now - 5000, text: 'T' }, [now - 9000], now)).toEqual({ ms: 5000, source: 'annotation', created: 'T' });
    expect(ageOf(undefined, [now - 3000, undefined, now - 7000, now - 1000], now)).toEqual({ ms: 7000, source: 'secret', created: new Date(now - 7000).toISOString() });
    expect(ageOf(undefined, [undefined], now)).toEqual({ ms: undefined, source: 'unknown' });
    expect(ageOf(undefined, [], now)).toEqual({ ms: undefined, source: 'unknown' });
  });

  it('keeps an artifact younger than the minimum; exactly the minimum may go (strict <)', () => {
    const hour = 3_600_000;
    expect(graceKeeps({ ms: hour - 1, source: 'annotation' }, hour)).toBe('young');
    expect(graceKeeps({ ms: hour, source: 'annotation' }, hour)).toBeUndefined();
    expect(graceKeeps({ ms: hour + 1, source: 'annotation' }, hour)).toBeUndefined();
    expect(graceKeeps({ ms: -5, source: 'annotation' }, 0)).toBe('young');
    expect(graceKeeps({ ms: 0, source: 'secret' }, 0)).toBeUndefined();
  });

  it('keeps an unknown age unless the minimum is 0', () => {
    expect(graceKeeps({ ms: undefined, source: 'unknown' }, 1)).toBe('age-unknown');
    expect(graceKeeps({ ms: undefined, source: 'unknown' }, 0)).toBeUndefined();
  });
});

describe('the mass-delete brake', () => {
  const base = { ratio: 0.5, min: 5 };
  it('needs more than the share and more than the minimum, both strictly', () => {
    expect(brakeCause({ ...base, planned: 6, known: 12, inUse: 6 })).toBeUndefined();
    expect(brakeCause({ ...base, planned: 5, known: 6, inUse: 1 })).toBeUndefined();
    expect(brakeCause({ ...base, planned: 7, known: 12, inUse: 5 })).toBe(
      'mass-delete brake: 7 of 12 known Fleet artifacts (58%) would be deleted, more than 50% and more than 5; nothing deleted (pass --allow-mass-delete if that is right)',
    );
    expect(brakeCause({ ...base, planned: 7, known: 12, inUse: 5, missing: 2 })).toBe(
      'mass-delete brake: 7 of 12 known Fleet artifacts (58%) would be deleted (2 of them already missing from the registry, only their secrets left), more than 50% and more than 5; nothing deleted (pass --allow-mass-delete if that is right)',
    );
  });

  it('stops any deletion when nothing is in use, and says nothing when nothing is planned', () => {
    expect(brakeCause({ ...base, planned: 1, known: 1, inUse: 0 })).toBe('mass-delete brake: nothing uses OCI storage but 1 artifact would be deleted; nothing deleted (pass --allow-mass-delete if that is right)');
    expect(brakeCause({ ...base, planned: 2, known: 2, inUse: 0, missing: 1 })).toBe(
      'mass-delete brake: nothing uses OCI storage but 2 artifacts (1 of them already missing from the registry, only their secrets left) would be deleted; nothing deleted (pass --allow-mass-delete if that is right)',
    );
    expect(brakeCause({ ...base, planned: 0, known: 9, inUse: 0 })).toBeUndefined();
  });
});

describe('the remit of a Secret', () => {
  const fleetSecret = (patch: { type?: string; name?: string; labels?: Record<string, string> | undefined; owners?: Array<{ apiVersion: string; kind: string }> | undefined } = {}): V1Secret => ({
    type: 'type' in patch ? patch.type! : 'fleet.cattle.io/bundle-oci-storage/v1alpha1',
    metadata: {
      name: patch.name ?? ID,
      namespace: 'fleet-default',
      ...('labels' in patch ? (patch.labels ? { labels: patch.labels } : {}) : { labels: { 'fleet.cattle.io/bundle-internal-secret': 'true' } }),
      ...('owners' in patch
        ? patch.owners ? { ownerReferences: patch.owners.map((o) => ({ ...o, name: 'b', uid: 'u' })) } : {}
        : { ownerReferences: [{ apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'Bundle', name: 'b', uid: 'u' }] }),
    },
  });

  it("holds for Fleet's per-bundle copies and their clones", () => {
    expect(outsideRemit(fleetSecret())).toBeUndefined();
    expect(outsideRemit(fleetSecret({ owners: [{ apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'BundleDeployment' }] }))).toBeUndefined();
    expect(outsideRemit(fleetSecret({ owners: [{ apiVersion: 'v1', kind: 'ConfigMap' }, { apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'Bundle' }] }))).toBeUndefined();
  });

  it('fails on any one of type, name, label and owner, and says which', () => {
    expect(outsideRemit(fleetSecret({ type: 'Opaque' }))).toBe('its type is not fleet.cattle.io/bundle-oci-storage/v1alpha1');
    expect(outsideRemit(fleetSecret({ name: 'ocistorage' }))).toBe('its name is not a contents id');
    expect(outsideRemit(fleetSecret({ labels: undefined }))).toBe('it lacks Fleet\'s label fleet.cattle.io/bundle-internal-secret: "true"');
    expect(outsideRemit(fleetSecret({ labels: { 'fleet.cattle.io/bundle-internal-secret': 'false' } }))).toMatch(/lacks Fleet's label/);
    expect(outsideRemit(fleetSecret({ labels: { other: 'true' } }))).toMatch(/lacks Fleet's label/);
    expect(outsideRemit(fleetSecret({ owners: undefined }))).toBe('it has no ownerReference to a Bundle or BundleDeployment');
    expect(outsideRemit(fleetSecret({ owners: [] }))).toMatch(/no ownerReference/);
    expect(outsideRemit(fleetSecret({ owners: [{ apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'GitRepo' }] }))).toMatch(/no ownerReference/);
    expect(outsideRemit(fleetSecret({ owners: [{ apiVersion: 'example.com/v1', kind: 'Bundle' }] }))).toMatch(/no ownerReference/);
    expect(outsideRemit(fleetSecret({ owners: [{ apiVersion: 'xfleet.cattle.io/v1alpha1', kind: 'Bundle' }] }))).toMatch(/no ownerReference/);
    expect(outsideRemit({ type: 'fleet.cattle.io/bundle-oci-storage/v1alpha1' })).toBe('its name is not a contents id');
  });
});

describe('references', () => {
  it('passes host[:port] with plain path segments', () => {
    for (const ok of ['registry.example.com', 'registry.example.com:5000/fleet', 'r:5000/fleet/bundles', '127.0.0.1:5000/a/b/', '[::1]:5000/x', 'r/a-b_c.d', 'r./x', 'r/a//', 'host/', 'r:5']) {
      expect(referenceProblem(ok), ok).toBeUndefined();
    }
  });

  it.each([
    ['', 'is missing or empty'],
    ['https://r/fleet', 'must not contain a scheme (write host[:port]/path; use basicHTTP for plain http)'],
    ['oci://r/fleet', 'must not contain a scheme (write host[:port]/path; use basicHTTP for plain http)'],
    ['r/fleet bundles', 'must not contain whitespace'],
    ['r/fleet?n=1', 'must not contain a query (?)'],
    ['r/fleet#frag', 'must not contain a fragment (#)'],
    ['r/fleet\\..\\victim', 'must not contain a backslash'],
    ['user:pw@r/fleet', 'must not contain userinfo (user@host): credentials belong in username and password'],
    ['r_x/fleet', 'does not start with a valid host[:port]'],
    ['r_', 'does not start with a valid host[:port]'],
    ['r:123456/x', 'does not start with a valid host[:port]'],
    ['[::1/x', 'does not start with a valid host[:port]'],
    ['/fleet', 'does not start with a valid host[:port]'],
    ['r:port/fleet', 'does not start with a valid host[:port]'],
    ['r//fleet', 'has an empty path segment'],
    ['r/fleet//bundles', 'has an empty path segment'],
    ['r/fleet/../victim', 'has a ".." path segment'],
    ['r/./fleet', 'has a "." path segment'],
    ['r/fleet/..', 'has a ".." path segment'],
    ['r/fleet/%2e%2e/victim', 'has an encoded "." or "/" in a path segment'],
    ['r/fleet%2Fvictim', 'has an encoded "." or "/" in a path segment'],
  ])('refuses %j: %s', (reference, problem) => {
    expect(referenceProblem(reference)).toBe(problem);
  });
});

describe('may a delete go now', () => {
  const D1 = `sha256:${'1'.repeat(64)}`;
  const D2 = `sha256:${'2'.repeat(64)}`;

  it('a Secret: only while the run goes on and nothing names the id', () => {
    expect(mayDeleteNow({ stopped: false, inUse: false })).toEqual({ go: true });
    expect(mayDeleteNow({ stopped: true, inUse: false })).toEqual({ go: false, why: 'stopped' });
    expect(mayDeleteNow({ stopped: false, inUse: true })).toEqual({ go: false, why: 'in-use' });
    expect(mayDeleteNow({ stopped: true, inUse: true })).toEqual({ go: false, why: 'stopped' });
  });

  it('a manifest: also only while latest still names the digest judged', () => {
    expect(mayDeleteNow({ stopped: false, inUse: false, judgedDigest: D1, currentDigest: D1 })).toEqual({ go: true });
    expect(mayDeleteNow({ stopped: false, inUse: false, judgedDigest: D1, currentDigest: D2 })).toEqual({ go: false, why: 'changed' });
    expect(mayDeleteNow({ stopped: false, inUse: false, judgedDigest: D1, currentDigest: null })).toEqual({ go: false, why: 'gone' });
    expect(mayDeleteNow({ stopped: false, inUse: false, judgedDigest: D1 })).toEqual({ go: false, why: 'gone' });
    expect(mayDeleteNow({ stopped: false, inUse: true, judgedDigest: D1, currentDigest: D1 })).toEqual({ go: false, why: 'in-use' });
    expect(mayDeleteNow({ stopped: true, inUse: false, judgedDigest: D1, currentDigest: D1 })).toEqual({ go: false, why: 'stopped' });
  });
});
