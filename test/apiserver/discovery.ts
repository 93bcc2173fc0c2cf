// Discovery documents: /version, /api, /apis, /api/v1, /apis/<group>[/<version>].
// Legacy (unaggregated) discovery only: kubectl asks for apidiscovery.k8s.io/v2 first but
// accepts a plain application/json answer and then walks the group versions.

import { notFoundPath } from './errors.ts';
import type { Catalogue } from './resources.ts';
import type { ResourceType } from './types.ts';

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-fleet-cleanup-test',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function resourceEntries(t: ResourceType): unknown[] {
  const main = {
    name: t.resource,
    singularName: t.singular,
    namespaced: t.namespaced,
    kind: t.kind,
    verbs: VERBS,
    ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
    ...(t.categories.length ? { categories: t.categories } : {}),
  };
  if (!t.statusSubresource) return [main];
  return [main, { name: `${t.resource}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] }];
}

function groupEntry(catalogue: Catalogue, group: string, versions: string[]): unknown {
  const gvs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  void catalogue;
  return { name: group, versions: gvs, preferredVersion: gvs[0] };
}

/** The discovery document at this path, or undefined when the path is not discovery. */
export function discovery(catalogue: Catalogue, path: string, serverAddress: string): unknown {
  const p = path.replace(/\/+$/, '');
  if (p === '/version') return VERSION_INFO;
  if (p === '/api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  if (p === '/api/v1') {
    return { kind: 'APIResourceList', groupVersion: 'v1', resources: catalogue.inGroupVersion('', 'v1').flatMap(resourceEntries) };
  }
  if (p === '/apis') {
    const groups = [...catalogue.groupVersions()].filter(([g]) => g !== '').map(([g, vs]) => groupEntry(catalogue, g, vs));
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }
  const m = p.match(/^\/apis\/([^/]+)(?:\/([^/]+))?$/);
  if (m) {
    const versions = catalogue.groupVersions().get(m[1]!);
    if (!versions || m[1] === '') throw notFoundPath();
    if (m[2] === undefined) return { kind: 'APIGroup', apiVersion: 'v1', ...(groupEntry(catalogue, m[1]!, versions) as object) };
    if (!versions.includes(m[2])) throw notFoundPath();
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${m[1]}/${m[2]}`, resources: catalogue.inGroupVersion(m[1]!, m[2]).flatMap(resourceEntries) };
  }
  return undefined;
}
