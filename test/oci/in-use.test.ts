// The sweep's in-use view: what each Bundle and BundleDeployment names, as watch events change it.
import { describe, expect, it } from 'vitest';
import { InUseView } from '../../src/oci/in-use.ts';

const A = `s-${'a'.repeat(61)}`;
const B = `s-${'b'.repeat(61)}`;
const meta = (name: string, namespace = 'fleet-default') => ({ name, namespace });

describe('InUseView', () => {
  it('an id is in use while any object names it, however many do', () => {
    const view = new InUseView();
    view.apply('Bundle', { metadata: meta('one'), spec: { contentsId: A } });
    view.apply('BundleDeployment', { metadata: meta('one', 'cluster-x'), spec: { deploymentID: `${A}:h`, stagedDeploymentID: `${A}:h2` } });
    expect(view.has(A)).toBe(true);
    view.remove('Bundle', { metadata: meta('one') });
    expect(view.has(A)).toBe(true);
    view.remove('BundleDeployment', { metadata: meta('one', 'cluster-x') });
    expect(view.has(A)).toBe(false);
  });

  it('a modified object names what it names now, not what it named before', () => {
    const view = new InUseView();
    view.apply('Bundle', { metadata: meta('one'), spec: { contentsId: A } });
    view.apply('Bundle', { metadata: meta('one'), spec: { contentsId: B } });
    expect([view.has(A), view.has(B)]).toEqual([false, true]);
    view.apply('Bundle', { metadata: meta('one'), spec: {} });
    expect(view.has(B)).toBe(false);
  });

  it('objects are told apart by kind, namespace and name', () => {
    const view = new InUseView();
    view.apply('Bundle', { metadata: meta('one'), spec: { contentsId: A } });
    view.apply('Bundle', { metadata: meta('one', 'other'), spec: { contentsId: A } });
    view.apply('BundleDeployment', { metadata: meta('one'), spec: { deploymentID: `${A}:h` } });
    view.remove('Bundle', { metadata: meta('one') });
    view.remove('Bundle', { metadata: meta('one', 'other') });
    expect(view.has(A)).toBe(true);
    view.remove('BundleDeployment', { metadata: meta('one') });
    expect(view.has(A)).toBe(false);

    // Same name in two namespaces, naming different ids: removing one leaves the other.
    view.apply('Bundle', { metadata: meta('two'), spec: { contentsId: A } });
    view.apply('Bundle', { metadata: meta('two', 'other'), spec: { contentsId: B } });
    view.remove('Bundle', { metadata: meta('two') });
    expect([view.has(A), view.has(B)]).toEqual([false, true]);
  });

  it('removing what was never there changes nothing', () => {
    const view = new InUseView();
    view.apply('Bundle', { metadata: meta('one'), spec: { contentsId: A } });
    view.remove('Bundle', { metadata: meta('two') });
    view.remove('BundleDeployment', {});
    expect(view.has(A)).toBe(true);
  });
});
