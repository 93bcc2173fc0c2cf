// The pure parts of the OCI phase: the re-check's sharing and refreshing of the in-use set,
// deployment ids, and the brake's arithmetic at its edges.
import { describe, expect, it } from 'vitest';
import { contentsIdOfDeployment, InUseSet, type MarkResult } from '../../src/oci/mark.ts';
import { brakeCause } from '../../src/oci/plan.ts';
import { Recheck, RecheckError } from '../../src/oci/sweep.ts';

const ID = `s-${'a'.repeat(61)}`;

describe('Recheck', () => {
  const world = () => {
    let clock = 1_000_000;
    let listings = 0;
    let answer: () => MarkResult = () => {
      const inUse = new InUseSet(clock);
      if (listings > 1) inUse.add(ID, true);
      return { ok: true, inUse };
    };
    const take = async (): Promise<MarkResult> => {
      listings++;
      await new Promise((r) => setTimeout(r, 5));
      return answer();
    };
    return {
      recheck: new Recheck(take, 30_000, () => new Date(clock)),
      advance: (ms: number) => (clock += ms),
      listings: () => listings,
      fail: () => (answer = () => ({ ok: false, outcome: 'failed', cause: 'list bundles.fleet.cattle.io in all namespaces: 403 Forbidden' })),
    };
  };

  it('concurrent deletes share one listing; it is listed again only once older than the limit', async () => {
    const w = world();
    const sets = await Promise.all(Array.from({ length: 5 }, () => w.recheck.current()));
    expect(w.listings()).toBe(1);
    expect(new Set(sets).size).toBe(1);
    w.advance(30_000);
    await w.recheck.current();
    expect(w.listings()).toBe(1);
    w.advance(1);
    const fresh = await Promise.all(Array.from({ length: 3 }, () => w.recheck.current()));
    expect(w.listings()).toBe(2);
    expect(fresh.every((s) => s.has(ID))).toBe(true);
  });

  it('a failed listing throws, saying that nothing more is deleted', async () => {
    const w = world();
    w.fail();
    const err = await w.recheck.current().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecheckError);
    expect((err as RecheckError).outcome).toBe('failed');
    expect((err as Error).message).toMatch(/nothing more deleted: list bundles.*403 Forbidden/);
  });
});

describe('in-use ids', () => {
  it('takes a deployment id up to the colon', () => {
    expect(contentsIdOfDeployment(`${ID}:${'f'.repeat(64)}`)).toBe(ID);
    expect(contentsIdOfDeployment(ID)).toBe(ID);
    expect(contentsIdOfDeployment('')).toBeUndefined();
    expect(contentsIdOfDeployment(undefined)).toBeUndefined();
  });

  it('counts each OCI id once, however many objects name it', () => {
    const set = new InUseSet(0);
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
