// The sweep's fresh reads: every check gets a read that started after it asked, and checks
// asked while a read is in flight share the next one.
import { describe, expect, it } from 'vitest';
import { FreshRead } from '../../src/oci/fresh-read.ts';
import { settle } from '../fixtures/clock.ts';

/** A read whose answers the test releases one at a time; each answer is the read's number. */
function controlledRead() {
  const pending: Array<{ n: number; resolve: (v: number) => void; reject: (e: Error) => void }> = [];
  let started = 0;
  const read = () => new Promise<number>((resolve, reject) => pending.push({ n: ++started, resolve, reject }));
  const answer = () => {
    const p = pending.shift()!;
    p.resolve(p.n);
  };
  const fail = () => pending.shift()!.reject(new Error('list bundles: 429'));
  return { read, answer, fail, started: () => started, waiting: () => pending.length };
}

describe('FreshRead', () => {
  it('gives each check a read that began after it asked; checks asked meanwhile share one', async () => {
    const r = controlledRead();
    const fresh = new FreshRead(r.read);
    const first = fresh.get(); // starts read 1
    const during = [fresh.get(), fresh.get(), fresh.get()]; // read 1 began before them: they wait for read 2
    expect(r.started()).toBe(1);
    r.answer();
    expect(await first).toBe(1);
    await settle();
    expect(r.started()).toBe(2);
    const duringRead2 = fresh.get(); // read 2 began before it: read 3
    r.answer();
    expect(await Promise.all(during)).toEqual([2, 2, 2]);
    await settle();
    r.answer();
    expect(await duringRead2).toBe(3);
    expect(fresh.started).toBe(3);
    // Nothing in flight: the next check starts its own read at once.
    const alone = fresh.get();
    expect(r.started()).toBe(4);
    r.answer();
    expect(await alone).toBe(4);
  });

  it('a failed read fails the checks that waited for it; the next check reads again', async () => {
    const r = controlledRead();
    const fresh = new FreshRead(r.read);
    const first = fresh.get().catch((e: Error) => e.message);
    const waiting = fresh.get().catch((e: Error) => e.message);
    r.answer();
    expect(await first).toBe(1);
    await settle();
    r.fail();
    expect(await waiting).toBe('list bundles: 429');
    const again = fresh.get();
    await settle();
    expect(r.waiting()).toBe(1);
    r.answer();
    expect(await again).toBe(3);
  });
});
