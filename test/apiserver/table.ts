// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (`Accept: ...;as=Table`).

import type { KubeObject, ResourceType } from './types.ts';

export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((a) => /as=Table/.test(a) && /g=meta\.k8s\.io/.test(a));
}

export function wantsPartialMetadata(accept: string | undefined): boolean {
  return (accept ?? '').split(',')[0]?.includes('as=PartialObjectMetadata') ?? false;
}

function partial(obj: KubeObject): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toPartialList(items: KubeObject[], listMeta: Record<string, unknown>): unknown {
  return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: listMeta, items: items.map(partial) };
}

export function toPartial(obj: KubeObject): KubeObject {
  return partial(obj);
}

export function toTable(type: ResourceType, items: KubeObject[], listMeta: Record<string, unknown>, includeObject: string | null): unknown {
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: type.columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
    rows: items.map((o) => ({
      cells: type.columns.map((c) => c.value(o, now) ?? null),
      object: includeObject === 'None' ? undefined : includeObject === 'Object' ? o : partial(o),
    })),
  };
}
